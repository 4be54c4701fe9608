//! Reading a recipe: the file, then TOML (`raw`), then meaning (`validate`).

use crate::model::{RECIPE_FILE, Recipe};
use crate::raw::RawRecipe;
use crate::{RecipeError, validate};
use std::path::Path;

impl Recipe {
    /// Loads `recipes/<name>/recipe.toml` under `recipes_dir`.
    pub fn load_named(recipes_dir: &Path, name: &str) -> Result<Recipe, RecipeError> {
        let file = recipes_dir.join(name).join(RECIPE_FILE);
        if !file.is_file() {
            return Err(RecipeError::NotFound {
                name: name.to_owned(),
                path: file,
            });
        }
        Recipe::load(&file)
    }

    pub fn load(file: &Path) -> Result<Recipe, RecipeError> {
        let text = std::fs::read_to_string(file).map_err(|source| RecipeError::Read {
            path: file.to_owned(),
            source,
        })?;
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
