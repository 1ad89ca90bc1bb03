//! Where the configuration comes from: the TOML file, with `MCPGATE_A__B` environment variables
//! overriding its keys, and where each key came from, so a problem names its line or variable.

use std::collections::HashMap;

use super::schema::Config;
use super::validation::validate;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the file (1-based).
    Line(usize),
    /// An environment variable.
    Env(String),
    /// Neither: a key that is missing, or the file as a whole.
    File,
}

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key it concerns (`auth.oidc.discovery_url`), empty for the file as a whole.
    pub key: String,
    /// Where.
    pub origin: Origin,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.origin {
            Origin::Line(line) => write!(f, "line {line}: ")?,
            Origin::Env(var) => write!(f, "{var}: ")?,
            Origin::File => {}
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// A configuration file with the environment's overrides applied, keeping track of where
/// each key came from.
pub struct Source {
    text: String,
    env: HashMap<String, String>,
}

/// The sections every configuration needs, and what each says.
const REQUIRED_SECTIONS: [(&str, &str); 2] = [
    (
        "upstream",
        "the MCP server behind the gateway (url = \"http://…/mcp\" or command = [\"…\"]), or [[routes]]",
    ),
    (
        "auth",
        "how callers sign in (client_id, client_secret_env and the provider's section; or mode = \"resource\")",
    ),
];

/// The prefix of override variables; `__` separates the path's parts.
const ENV_PREFIX: &str = "MCPGATE_";

impl Source {
    /// The file's text and the process environment.
    pub fn new(text: String, environment: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { text, env: environment.into_iter().collect() }
    }

    /// Parses, applies overrides and checks; every problem found, or the configuration.
    pub fn load(&self) -> Result<Config, Vec<Problem>> {
        let mut table: toml::Table = match toml::from_str(&self.text) {
            Ok(table) => table,
            Err(e) => {
                let origin = e.span().map(|s| Origin::Line(self.line_of(s.start))).unwrap_or(Origin::File);
                return Err(vec![Problem { key: String::new(), origin, message: e.message().to_owned() }]);
            }
        };
        let overridden = self.apply_overrides(&mut table)?;
        let missing: Vec<Problem> = REQUIRED_SECTIONS
            .iter()
            // `[[routes]]` may name every upstream.
            .filter(|(name, _)| {
                let given =
                    table.contains_key(*name) || (*name == "upstream" && table.contains_key("routes"));
                !given
            })
            .map(|(name, what)| Problem {
                key: (*name).to_owned(),
                origin: Origin::File,
                message: format!("the [{name}] section is missing: {what}"),
            })
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            vec![self.problem_at(&path, e.inner().message(), &overridden)]
        })?;
        let problems = validate(&config);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems
                .into_iter()
                .map(|(key, message)| self.problem_at(&key, &message, &overridden))
                .collect())
        }
    }

    /// Applies `MCPGATE_A__B=value` as `a.b = value`: `true`/`false` as booleans, `[...]` as a
    /// TOML array, anything else as a string. Returns which keys came from which variable.
    fn apply_overrides(&self, table: &mut toml::Table) -> Result<HashMap<String, String>, Vec<Problem>> {
        let mut overridden = HashMap::new();
        let mut problems = Vec::new();
        let mut vars: Vec<_> =
            self.env.iter().filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__")).collect();
        vars.sort();
        for (var, raw) in vars {
            let path: Vec<String> =
                var[ENV_PREFIX.len()..].split("__").map(str::to_ascii_lowercase).collect();
            let key = path.join(".");
            let value = match raw.trim() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                array if array.starts_with('[') => {
                    match toml::from_str::<toml::Table>(&format!("v = {array}")) {
                        Ok(mut parsed) => parsed.remove("v").unwrap_or(toml::Value::Array(Vec::new())),
                        Err(e) => {
                            let message = format!("not a TOML array: {}", e.message());
                            problems.push(Problem { key, origin: Origin::Env(var.clone()), message });
                            continue;
                        }
                    }
                }
                _ => toml::Value::String(raw.clone()),
            };
            if insert_at(table, &path, value).is_err() {
                let message = "overrides a key whose parent is not a table".to_owned();
                problems.push(Problem { key, origin: Origin::Env(var.clone()), message });
                continue;
            }
            overridden.insert(key, var.clone());
        }
        if problems.is_empty() { Ok(overridden) } else { Err(problems) }
    }

    /// A problem at `key` (a dotted path, possibly empty), located in the environment or the
    /// file; for a missing key, its table's line.
    fn problem_at(&self, key: &str, message: &str, overridden: &HashMap<String, String>) -> Problem {
        // For a missing field the path ends at its table; make the key say which field.
        let field = between_backticks(message);
        let key = if key == "." { "" } else { key };
        let full_key = match field {
            Some(field) if message.starts_with("missing field") => {
                if key.is_empty() {
                    field.to_owned()
                } else {
                    format!("{key}.{field}")
                }
            }
            _ => key.to_owned(),
        };
        let mut message = message.to_owned();
        if message.starts_with("unknown field")
            && field.is_some_and(|f| f.contains("secret") && !f.ends_with("_env") && !f.ends_with("_file"))
        {
            message =
                format!("{message} (secrets are given by reference: use the key's `_env` or `_file` form)");
        }
        let origin = match overridden.get(&full_key).or_else(|| overridden.get(key)) {
            Some(var) => Origin::Env(var.clone()),
            None => {
                self.locate(&full_key).or_else(|| self.locate(key)).map(Origin::Line).unwrap_or(Origin::File)
            }
        };
        Problem { key: full_key, origin, message }
    }

    /// The line where `key` (dotted) is written in the file, if it is.
    fn locate(&self, key: &str) -> Option<usize> {
        let root = toml::de::DeTable::parse(&self.text).ok()?;
        let mut table = root.get_ref();
        let mut span = None;
        for part in key.split('.').filter(|p| !p.is_empty()) {
            let (name, value) = table.iter().find(|(name, _)| name.get_ref().as_ref() == part)?;
            span = Some(name.span());
            match value.get_ref() {
                toml::de::DeValue::Table(inner) => table = inner,
                _ => break,
            }
        }
        span.map(|s| self.line_of(s.start))
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text.get(..offset).map_or(1, |before| before.matches('\n').count() + 1)
    }
}

/// Sets `value` at `path` in `table`, making the tables on the way; `Err` when a part of the
/// way is not a table.
fn insert_at(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), ()> {
    match path {
        [] => Err(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            match table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new())) {
                toml::Value::Table(inner) => insert_at(inner, rest, value),
                _ => Err(()),
            }
        }
    }
}

fn between_backticks(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}
