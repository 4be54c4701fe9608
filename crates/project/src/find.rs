//! Finding the project root and naming the paths inside it.

use crate::ProjectError;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The marker file that makes a folder a project even before it has recipes. Its contents are
/// not read yet: it is reserved for project settings, and any text (or none) is accepted.
pub const MARKER: &str = "snpkit.toml";
/// The folder of recipes inside a project.
pub const RECIPES_DIR: &str = "recipes";

/// How the project was found, for `where` and for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// `--project DIR`.
    Flag,
    /// `$SNPKIT_PROJECT`.
    Env,
    /// Upwards from this folder (the current one, with its symlinks resolved).
    Search { from: PathBuf },
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::Flag => f.write_str("--project"),
            Found::Env => write!(f, "${}", crate::PROJECT_ENV),
            Found::Search { from } => write!(
                f,
                "the first folder holding {RECIPES_DIR}/ or {MARKER}, upwards from {}",
                from.display()
            ),
        }
    }
}

/// A snpkit project: an absolute folder (symlinks resolved) holding `recipes/` or `snpkit.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    root: PathBuf,
    found: Found,
}

impl Project {
    /// `--project`, else `$SNPKIT_PROJECT`, else the current folder and its parents, read from
    /// the process.
    pub fn locate(flag: Option<&Path>) -> Result<Project, ProjectError> {
        let env = std::env::var_os(crate::PROJECT_ENV);
        let cwd = std::env::current_dir().map_err(|source| ProjectError::NoCurrentDir { source });
        Project::find(flag, env, cwd)
    }

    /// The rule itself, on given values: an explicit folder (flag, then a non-empty variable)
    /// must be a project itself, with no search above it, so a typo is an error instead of some
    /// other project; without one, the search starts at `cwd`. An empty variable counts as unset.
    pub fn find(
        flag: Option<&Path>,
        env: Option<OsString>,
        cwd: Result<PathBuf, ProjectError>,
    ) -> Result<Project, ProjectError> {
        if let Some(dir) = flag {
            return Project::at(dir, Found::Flag);
        }
        if let Some(dir) = env.filter(|v| !v.is_empty()) {
            return Project::at(Path::new(&dir), Found::Env);
        }
        Project::search(&cwd?)
    }

    /// `dir` itself, which must be a project.
    pub fn at(dir: &Path, found: Found) -> Result<Project, ProjectError> {
        let how = match &found {
            Found::Flag => format!("--project {}", dir.display()),
            Found::Env => format!("{}={}", crate::PROJECT_ENV, dir.display()),
            Found::Search { .. } => dir.display().to_string(),
        };
        if dir.as_os_str().is_empty() {
            return Err(ProjectError::Empty { how });
        }
        let root = real_dir(dir, &how)?;
        if !is_project(&root) {
            return Err(ProjectError::NotAProject { how, path: root });
        }
        Ok(Project { root, found })
    }

    /// The first folder holding `recipes/` or `snpkit.toml`, from `start` (symlinks resolved
    /// first, so a symlinked current folder searches the real tree's parents) upwards.
    pub fn search(start: &Path) -> Result<Project, ProjectError> {
        let from = real_dir(start, &start.display().to_string())?;
        let root = from
            .ancestors()
            .find(|d| is_project(d))
            .map(Path::to_path_buf)
            .ok_or_else(|| ProjectError::NotFound {
                start: from.clone(),
            })?;
        Ok(Project {
            root,
            found: Found::Search { from },
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn found(&self) -> &Found {
        &self.found
    }

    /// `<root>/recipes`.
    pub fn recipes(&self) -> PathBuf {
        self.root.join(RECIPES_DIR)
    }

    /// `<root>/images`.
    pub fn images(&self) -> PathBuf {
        self.root.join(snpkit_bundle::IMAGES_DIR)
    }

    /// `<root>/recipes/<name>`; the name is checked as every command checks it, so a path
    /// never reaches the file system.
    pub fn recipe_dir(&self, name: &str) -> Result<PathBuf, snpkit_bundle::BundleError> {
        snpkit_bundle::check_recipe_name(name)?;
        Ok(self.recipes().join(name))
    }

    /// `<root>/images/<name>`, the name checked as for [`Project::recipe_dir`].
    pub fn image_dir(&self, name: &str) -> Result<PathBuf, snpkit_bundle::BundleError> {
        snpkit_bundle::check_recipe_name(name)?;
        Ok(self.images().join(name))
    }

    /// The recipes the project has: the names of `recipes/*/recipe.toml`, sorted (for `where`).
    pub fn recipe_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.recipes())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("recipe.toml").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| snpkit_bundle::check_recipe_name(n).is_ok())
            .collect();
        names.sort();
        names
    }
}

/// Whether `dir` is a project folder: `recipes/` is a folder or `snpkit.toml` a file (through
/// symlinks, as a user would expect of `ln -s`).
pub fn is_project(dir: &Path) -> bool {
    dir.join(RECIPES_DIR).is_dir() || dir.join(MARKER).is_file()
}

/// `dir` absolute, with its symlinks resolved, and a folder.
fn real_dir(dir: &Path, how: &str) -> Result<PathBuf, ProjectError> {
    let real = std::fs::canonicalize(dir).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ProjectError::Missing {
            how: how.to_owned(),
            path: dir.to_owned(),
        },
        _ => ProjectError::Unreadable {
            how: how.to_owned(),
            path: dir.to_owned(),
            source,
        },
    })?;
    if !real.is_dir() {
        return Err(ProjectError::NotAFolder {
            how: how.to_owned(),
            path: real,
        });
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("team/recipes/web/files/etc")).unwrap();
        std::fs::write(t.path().join("team/recipes/web/recipe.toml"), "").unwrap();
        std::fs::create_dir_all(t.path().join("elsewhere/deep")).unwrap();
        t
    }

    fn real(p: &Path) -> PathBuf {
        std::fs::canonicalize(p).unwrap()
    }

    #[test]
    fn search_goes_up_from_nested_folders_to_the_first_project() {
        let t = tree();
        let team = real(&t.path().join("team"));
        for start in ["team", "team/recipes", "team/recipes/web/files/etc"] {
            let p = Project::search(&t.path().join(start)).unwrap();
            assert_eq!(p.root(), team, "from {start}");
            assert_eq!(p.recipes(), team.join("recipes"));
            assert_eq!(p.images(), team.join("images"));
            assert_eq!(p.recipe_names(), ["web"]);
        }
    }

    #[test]
    fn the_nearest_project_wins_over_one_further_up() {
        let t = tree();
        let inner = t.path().join("team/vendor/other");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(inner.join(MARKER), "").unwrap();
        let p = Project::search(&inner.join(".")).unwrap();
        assert_eq!(p.root(), real(&inner));
        assert!(p.recipe_names().is_empty());
    }

    #[test]
    fn a_marker_file_makes_a_project_without_recipes() {
        let t = tree();
        let fresh = t.path().join("elsewhere");
        std::fs::write(fresh.join(MARKER), "").unwrap();
        let p = Project::search(&fresh.join("deep")).unwrap();
        assert_eq!(p.root(), real(&fresh));
    }

    #[test]
    fn no_project_above_says_where_the_search_started_and_what_to_do() {
        let t = tree();
        let e = Project::search(&t.path().join("elsewhere/deep")).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ProjectError::NotFound { .. }), "{text}");
        assert!(text.contains("elsewhere/deep"), "{text}");
        assert!(text.contains("--project"), "{text}");
    }

    #[test]
    fn the_flag_wins_over_the_variable_and_the_search() {
        let t = tree();
        let other = t.path().join("other");
        std::fs::create_dir_all(other.join("recipes")).unwrap();
        let p = Project::find(
            Some(&other),
            Some(t.path().join("team").into()),
            Ok(t.path().join("team")),
        )
        .unwrap();
        assert_eq!(p.root(), real(&other));
        assert_eq!(p.found(), &Found::Flag);
    }

    #[test]
    fn the_variable_wins_over_the_search_and_empty_counts_as_unset() {
        let t = tree();
        let other = t.path().join("other");
        std::fs::create_dir_all(other.join("recipes")).unwrap();
        let cwd = || Ok(t.path().join("team/recipes"));
        let p = Project::find(None, Some(other.clone().into()), cwd()).unwrap();
        assert_eq!((p.root(), p.found()), (real(&other).as_path(), &Found::Env));
        let p = Project::find(None, Some(OsString::new()), cwd()).unwrap();
        assert_eq!(p.root(), real(&t.path().join("team")));
        assert!(matches!(p.found(), Found::Search { .. }));
    }

    #[test]
    fn an_explicit_folder_must_be_a_project_itself_never_searched_above() {
        let t = tree();
        // Inside a project, but not its root: a typo must not quietly pick the project above.
        let nested = t.path().join("team/recipes/web");
        let e = Project::find(Some(&nested), None, Ok(t.path().into())).unwrap_err();
        assert!(matches!(e, ProjectError::NotAProject { .. }), "{e}");
        let text = e.to_string();
        assert!(text.starts_with("--project "), "{text}");
        assert!(
            text.contains("neither a recipes/ folder nor a snpkit.toml"),
            "{text}"
        );
        let e = Project::find(None, Some(nested.into()), Ok(t.path().into())).unwrap_err();
        assert!(e.to_string().starts_with("SNPKIT_PROJECT="), "{e}");
    }

    #[test]
    fn missing_empty_and_file_values_are_refused_by_name() {
        let t = tree();
        let missing = t.path().join("nope");
        let e = Project::find(Some(&missing), None, Ok(t.path().into())).unwrap_err();
        assert!(matches!(e, ProjectError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("does not exist"), "{e}");
        let e = Project::find(Some(Path::new("")), None, Ok(t.path().into())).unwrap_err();
        assert!(matches!(e, ProjectError::Empty { .. }), "{e}");
        let file = t.path().join("team/recipes/web/recipe.toml");
        let e = Project::find(Some(&file), None, Ok(t.path().into())).unwrap_err();
        assert!(matches!(e, ProjectError::NotAFolder { .. }), "{e}");
        // A `recipes` that is a file does not make a project.
        let odd = t.path().join("odd");
        std::fs::create_dir_all(&odd).unwrap();
        std::fs::write(odd.join("recipes"), "").unwrap();
        let e = Project::find(Some(&odd), None, Ok(t.path().into())).unwrap_err();
        assert!(matches!(e, ProjectError::NotAProject { .. }), "{e}");
    }

    #[test]
    fn a_symlinked_current_folder_searches_the_real_tree() {
        let t = tree();
        let link = t.path().join("elsewhere/link");
        std::os::unix::fs::symlink(t.path().join("team/recipes/web/files"), &link).unwrap();
        // The link's own parents (elsewhere/) hold no project; the real folder's do.
        let p = Project::search(&link).unwrap();
        assert_eq!(p.root(), real(&t.path().join("team")));
        match p.found() {
            Found::Search { from } => assert_eq!(from, &real(&link)),
            other => panic!("found by {other:?}"),
        }
        // And a symlink to a project, given explicitly, is that project.
        let to_team = t.path().join("team-link");
        std::os::unix::fs::symlink(t.path().join("team"), &to_team).unwrap();
        let p = Project::find(Some(&to_team), None, Ok(t.path().into())).unwrap();
        assert_eq!(p.root(), real(&t.path().join("team")));
    }

    #[test]
    fn an_unreadable_current_folder_asks_for_the_flag() {
        let e = Project::find(
            None,
            None,
            Err(ProjectError::NoCurrentDir {
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
        )
        .unwrap_err();
        assert!(e.to_string().contains("--project"), "{e}");
    }

    #[test]
    fn recipe_and_image_folders_refuse_paths_as_names() {
        let t = tree();
        let p = Project::search(&t.path().join("team")).unwrap();
        assert_eq!(p.recipe_dir("web").unwrap(), p.root().join("recipes/web"));
        assert_eq!(p.image_dir("web").unwrap(), p.root().join("images/web"));
        for bad in ["../x", "a/b", ".hidden", ""] {
            assert!(p.recipe_dir(bad).is_err(), "{bad:?}");
            assert!(p.image_dir(bad).is_err(), "{bad:?}");
        }
    }
}
