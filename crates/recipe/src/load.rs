//! Reading a recipe: the file, then TOML (`raw`), then meaning (`validate`).

use crate::model::{RECIPE_FILE, Recipe};
use crate::raw::RawRecipe;
use crate::{RecipeError, validate};
use std::path::Path;

impl Recipe {
    /// Loads `recipes/<name>/recipe.toml` under `recipes_dir`.
    pub fn load_named(recipes_dir: &Path, name: &str) -> Result<Recipe, RecipeError> {
        // A name, never a path: `../x` must not load a recipe from outside the recipes folder.
        snpkit_bundle::check_recipe_name(name).map_err(|e| RecipeError::Name(Box::new(e)))?;
        let file = recipes_dir.join(name).join(RECIPE_FILE);
        // Anything there is read (and refused by kind if it is no regular file); only nothing at
        // all is "no recipe".
        if std::fs::symlink_metadata(&file).is_err() {
            return Err(RecipeError::NotFound {
                name: name.to_owned(),
                path: file,
            });
        }
        Recipe::load(&file)
    }

    pub fn load(file: &Path) -> Result<Recipe, RecipeError> {
        let text =
            snpkit_fsguard::read_string(file, "recipe.toml", crate::sources::MAX_RECIPE_FILE)?;
        Recipe::parse(&text, file)
    }

    /// Parses and validates recipe text; `file` is where it came from (for messages and for
    /// resolving relative paths), it is not read.
    pub fn parse(text: &str, file: &Path) -> Result<Recipe, RecipeError> {
        let raw: RawRecipe = toml::from_str(text).map_err(|e| RecipeError::Syntax {
            path: file.to_owned(),
            message: e.to_string(),
        })?;
        validate::recipe(raw, file)
    }
}
