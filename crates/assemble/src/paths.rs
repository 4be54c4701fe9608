//! How the lock and the manifest name a recipe's local files.

use snpkit_recipe::Recipe;
use std::path::Path;

/// A path inside the recipe folder, as the lock writes it.
pub(crate) fn relative(recipe: &Recipe, path: &Path) -> String {
    path.strip_prefix(&recipe.dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
