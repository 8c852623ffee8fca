//! SQL rendering: one Jinja environment (minijinja) for every model, template, macro and test.
//!
//! Undefined names are errors (a typo must not render as an empty string) and nothing is
//! escaped (the output is SQL, not HTML). Models see dbt's vocabulary:
//!
//! - `ref('model')` and `source('source', 'table')`: the relation to read, recorded as a
//!   dependency; which relation a name resolves to is the caller's (see [`Resolve`]): the
//!   published table, a staged one, or a deferred production table.
//! - `config(materialized=..., unique_key=..., tags=[...], ...)`: the model's settings.
//! - `var('name', default)`: the project's `vars:` from floe.yaml.
//! - `this`: the model's own published relation; `is_incremental()`: whether this run adds to an
//!   existing table rather than building it from nothing.
//! - macros from the project's `macros/*.sql`, callable from every model without an import.
//! - cross-engine macros, rendered per dialect: `dateadd`, `datediff`, `date_trunc`,
//!   `safe_cast`, `hash`, `surrogate_key`, `concat`, `current_timestamp`, `type_string`,
//!   `type_int`, `type_float`, `type_timestamp`.
//!
//! A render runs synchronously on one thread; its scope (resolver, recorded dependencies and
//! config) lives in a thread-local for that time, so user macros that call `ref` work too.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use floe_core::ports::Dialect;
use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error as JinjaError, ErrorKind, UndefinedBehavior, Value};

/// A dependency a render recorded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Dep {
    /// `ref('name')`: another model.
    Ref {
        /// The model.
        name: String,
    },
    /// `source('source', 'table')`: a silver table.
    Source {
        /// The source system.
        source: String,
        /// The table.
        table: String,
    },
}

impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dep::Ref { name } => write!(f, "ref('{name}')"),
            Dep::Source { source, table } => write!(f, "source('{source}', '{table}')"),
        }
    }
}

/// Why `ref` or `source` names no relation; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No model has the name (`hint` suggests a close one).
    #[error("there is no model '{name}'{hint}")]
    UnknownModel {
        /// The name.
        name: String,
        /// ` (did you mean 'x'?)`, or empty.
        hint: String,
    },
    /// No configured table has the name (`hint` suggests a close one).
    #[error("there is no table '{table}' under tables/{hint}")]
    UnknownSource {
        /// `source.table`.
        table: String,
        /// ` (did you mean 'x'?)`, or empty.
        hint: String,
    },
    /// A unit test gives no rows for the relation.
    #[error("the unit test gives no rows for {relation}: add it under given:")]
    NoRows {
        /// `ref('x')` or `source('s', 't')`.
        relation: String,
    },
}

/// How a render turns `ref` and `source` into relations.
pub trait Resolve: Send + Sync {
    /// The relation `ref(name)` reads, or why there is none.
    fn model(&self, name: &str) -> Result<String, ResolveError>;
    /// The relation `source(source, table)` reads, or why there is none.
    fn source(&self, source: &str, table: &str) -> Result<String, ResolveError>;
}

/// What one render needs besides the template.
#[derive(Clone)]
pub struct RenderCtx {
    /// Resolves `ref` and `source`.
    pub resolver: Arc<dyn Resolve>,
    /// The dialect of the cross-engine macros.
    pub dialect: Dialect,
    /// What `is_incremental()` returns.
    pub is_incremental: bool,
    /// What `this` renders as.
    pub this: Option<String>,
    /// The project's variables.
    pub vars: Arc<BTreeMap<String, serde_json::Value>>,
    /// Extra context (a template's `table` and `params`), shared by every render of a model.
    pub extra: Arc<BTreeMap<String, serde_json::Value>>,
}

/// A rendered model.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The SQL.
    pub sql: String,
    /// The dependencies it recorded, in first-use order.
    pub deps: Vec<Dep>,
    /// What `config(...)` set.
    pub config: BTreeMap<String, serde_json::Value>,
}

/// A render failure, located in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    /// The template (a path relative to the project).
    pub template: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.template, self.message),
            None => write!(f, "{}: {}", self.template, self.message),
        }
    }
}

impl std::error::Error for RenderError {}

impl RenderError {
    fn from_jinja(template: &str, e: &JinjaError) -> Self {
        let mut message = match e.detail() {
            // floe's own functions say what is wrong themselves.
            Some(d) if e.kind() == ErrorKind::InvalidOperation => d.to_owned(),
            Some(d) => format!("{}: {d}", kind_text(e.kind())),
            None => kind_text(e.kind()).to_owned(),
        };
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(&format!(" ({s})"));
            source = s.source();
        }
        RenderError {
            template: e.name().unwrap_or(template).to_owned(),
            line: e.line(),
            message,
        }
    }
}

fn kind_text(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::UndefinedError => {
            "undefined name (check the spelling; `var` needs a default or a `vars:` entry in floe.yaml)"
        }
        ErrorKind::SyntaxError => "Jinja syntax error",
        ErrorKind::TemplateNotFound => "template not found",
        ErrorKind::MissingArgument => "missing argument",
        ErrorKind::TooManyArguments => "too many arguments",
        ErrorKind::UnknownFunction => "unknown function",
        ErrorKind::InvalidOperation => "invalid operation",
        ErrorKind::UnknownFilter => "unknown filter",
        _ => "render error",
    }
}

struct Scope {
    ctx: RenderCtx,
    deps: Mutex<Vec<Dep>>,
    config: Mutex<BTreeMap<String, serde_json::Value>>,
}

thread_local! {
    static SCOPE: RefCell<Option<Arc<Scope>>> = const { RefCell::new(None) };
}

fn scope() -> Result<Arc<Scope>, JinjaError> {
    SCOPE.with(|s| s.borrow().clone()).ok_or_else(|| {
        JinjaError::new(
            ErrorKind::InvalidOperation,
            "floe's functions are only available while a model renders",
        )
    })
}

fn failed(msg: impl Into<String>) -> JinjaError {
    JinjaError::new(ErrorKind::InvalidOperation, msg.into())
}

/// The Jinja environment of a project: its macros, models, templates and tests.
pub struct Renderer {
    env: Environment<'static>,
    /// `{% from "macros/x.sql" import a, b %}` for every macro file, put before each template.
    prelude: String,
}

impl fmt::Debug for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renderer")
            .field("prelude", &self.prelude)
            .finish_non_exhaustive()
    }
}

/// The names of the macros a macro file defines (`{% macro name(...) %}`).
pub fn macro_names(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = source;
    while let Some(i) = rest.find("{%") {
        rest = &rest[i + 2..];
        let body = rest.trim_start_matches(['-', '+']).trim_start();
        if let Some(after) = body.strip_prefix("macro") {
            let after = after.trim_start();
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

impl Renderer {
    /// An environment with the project's macro files (name relative to the project, source).
    pub fn new(macros: &[(String, String)]) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_keep_trailing_newline(true);
        register(&mut env);
        let mut prelude = String::new();
        for (name, source) in macros {
            env.add_template_owned(name.clone(), source.clone())
                .map_err(|e| RenderError::from_jinja(name, &e))?;
            let names = macro_names(source);
            if !names.is_empty() {
                prelude.push_str(&format!(
                    "{{%- from \"{name}\" import {} -%}}",
                    names.join(", ")
                ));
            }
        }
        Ok(Renderer { env, prelude })
    }

    /// Adds a model, template or test under `name` (its path relative to the project). The
    /// project's macros are imported on its first line, so line numbers stay the file's own.
    pub fn add(&mut self, name: &str, source: &str) -> Result<(), RenderError> {
        self.env
            .add_template_owned(name.to_owned(), format!("{}{source}", self.prelude))
            .map_err(|e| RenderError::from_jinja(name, &e))
    }

    /// Renders the template `name`.
    pub fn render(&self, name: &str, ctx: &RenderCtx) -> Result<Rendered, RenderError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| RenderError::from_jinja(name, &e))?;
        let scope = Arc::new(Scope {
            ctx: ctx.clone(),
            deps: Mutex::new(Vec::new()),
            config: Mutex::new(BTreeMap::new()),
        });
        let mut context: BTreeMap<String, Value> = ctx
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), Value::from_serialize(v)))
            .collect();
        if let Some(this) = &ctx.this {
            context.insert("this".into(), Value::from(this.clone()));
        }
        SCOPE.with(|s| *s.borrow_mut() = Some(scope.clone()));
        let result = template.render(context);
        SCOPE.with(|s| *s.borrow_mut() = None);
        let sql = result.map_err(|e| RenderError::from_jinja(name, &e))?;
        let deps = scope.deps.lock().expect("not poisoned").clone();
        let config = scope.config.lock().expect("not poisoned").clone();
        Ok(Rendered { sql, deps, config })
    }

    /// Renders a one-off expression or snippet (a test's `to: ref('x')`).
    pub fn render_str(
        &self,
        what: &str,
        source: &str,
        ctx: &RenderCtx,
    ) -> Result<Rendered, RenderError> {
        let mut one = Renderer {
            env: self.env.clone(),
            prelude: self.prelude.clone(),
        };
        one.add(what, source)?;
        one.render(what, ctx)
    }
}

fn register(env: &mut Environment<'static>) {
    env.add_function("ref", |name: String| -> Result<String, JinjaError> {
        let s = scope()?;
        let relation = s
            .ctx
            .resolver
            .model(&name)
            .map_err(|e| failed(e.to_string()))?;
        let dep = Dep::Ref { name };
        let mut deps = s.deps.lock().expect("not poisoned");
        if !deps.contains(&dep) {
            deps.push(dep);
        }
        Ok(relation)
    });
    env.add_function(
        "source",
        |source: String, table: String| -> Result<String, JinjaError> {
            let s = scope()?;
            let relation = s
                .ctx
                .resolver
                .source(&source, &table)
                .map_err(|e| failed(e.to_string()))?;
            let dep = Dep::Source { source, table };
            let mut deps = s.deps.lock().expect("not poisoned");
            if !deps.contains(&dep) {
                deps.push(dep);
            }
            Ok(relation)
        },
    );
    env.add_function("config", |kwargs: Kwargs| -> Result<String, JinjaError> {
        let s = scope()?;
        let mut config = s.config.lock().expect("not poisoned");
        for key in kwargs.args() {
            let v: Value = kwargs.get(key)?;
            let json = serde_json::to_value(&v)
                .map_err(|e| failed(format!("config({key}=...) is not a plain value: {e}")))?;
            config.insert(key.to_owned(), json);
        }
        Ok(String::new())
    });
    env.add_function(
        "var",
        |name: String, default: Option<Value>| -> Result<Value, JinjaError> {
            let s = scope()?;
            match (s.ctx.vars.get(&name), default) {
                (Some(v), _) => Ok(Value::from_serialize(v)),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(JinjaError::new(
                    ErrorKind::UndefinedError,
                    format!(
                        "var('{name}') is not set: add it under `vars:` in floe.yaml, or give a default: var('{name}', ...)"
                    ),
                )),
            }
        },
    );
    env.add_function("is_incremental", || -> Result<bool, JinjaError> {
        Ok(scope()?.ctx.is_incremental)
    });
    env.add_function(
        "dateadd",
        |part: String, n: i64, expr: String| -> Result<String, JinjaError> {
            let part = date_part(&part)?;
            Ok(match scope()?.ctx.dialect {
                Dialect::DataFusion => format!("({expr} + INTERVAL '{n} {part}')"),
                Dialect::Trino => format!("date_add('{part}', {n}, {expr})"),
            })
        },
    );
    env.add_function(
        "datediff",
        |first: String, second: String, part: String| -> Result<String, JinjaError> {
            let part = date_part(&part)?;
            Ok(match scope()?.ctx.dialect {
                Dialect::DataFusion => datediff_datafusion(&first, &second, part),
                Dialect::Trino => format!(
                    "date_diff('{part}', CAST({first} AS TIMESTAMP), CAST({second} AS TIMESTAMP))"
                ),
            })
        },
    );
    env.add_function(
        "date_trunc",
        |part: String, expr: String| -> Result<String, JinjaError> {
            let part = date_part(&part)?;
            Ok(format!("date_trunc('{part}', {expr})"))
        },
    );
    env.add_function(
        "safe_cast",
        |expr: String, ty: String| -> Result<String, JinjaError> {
            Ok(format!("TRY_CAST({expr} AS {})", sql_type(&ty)?))
        },
    );
    env.add_function("hash", |expr: String| -> Result<String, JinjaError> {
        Ok(hash_sql(
            scope()?.ctx.dialect,
            &format!("CAST({expr} AS VARCHAR)"),
        ))
    });
    env.add_function(
        "surrogate_key",
        |columns: Vec<String>| -> Result<String, JinjaError> {
            if columns.is_empty() {
                return Err(failed("surrogate_key needs at least one column"));
            }
            let parts: Vec<String> = columns
                .iter()
                .map(|c| format!("COALESCE(CAST({c} AS VARCHAR), '_floe_null_')"))
                .collect();
            Ok(hash_sql(
                scope()?.ctx.dialect,
                &format!("concat_ws('-', {})", parts.join(", ")),
            ))
        },
    );
    env.add_function(
        "concat",
        |parts: Rest<String>| -> Result<String, JinjaError> {
            let parts: Vec<String> = parts
                .iter()
                .map(|p| format!("CAST({p} AS VARCHAR)"))
                .collect();
            Ok(format!("concat({})", parts.join(", ")))
        },
    );
    env.add_function("current_timestamp", || -> Result<String, JinjaError> {
        Ok(match scope()?.ctx.dialect {
            Dialect::DataFusion => "now()".to_owned(),
            Dialect::Trino => "current_timestamp".to_owned(),
        })
    });
    for (name, ty) in [
        ("type_string", "string"),
        ("type_int", "bigint"),
        ("type_float", "double"),
        ("type_timestamp", "timestamp"),
    ] {
        env.add_function(name, move || sql_type(ty));
    }
}

fn date_part(part: &str) -> Result<&'static str, JinjaError> {
    Ok(match part.to_ascii_lowercase().as_str() {
        "second" | "seconds" => "second",
        "minute" | "minutes" => "minute",
        "hour" | "hours" => "hour",
        "day" | "days" => "day",
        "week" | "weeks" => "week",
        "month" | "months" => "month",
        "quarter" | "quarters" => "quarter",
        "year" | "years" => "year",
        other => {
            return Err(failed(format!(
                "'{other}' is not a date part: use second, minute, hour, day, week, month, quarter or year"
            )));
        }
    })
}

fn datediff_datafusion(first: &str, second: &str, part: &str) -> String {
    let epoch = |e: &str| format!("date_part('epoch', CAST({e} AS TIMESTAMP))");
    let months = |e: &str| {
        format!(
            "(date_part('year', CAST({e} AS TIMESTAMP)) * 12 + date_part('month', CAST({e} AS TIMESTAMP)))"
        )
    };
    let seconds = |per: u32| {
        format!(
            "CAST(trunc(({} - {}) / {per}) AS BIGINT)",
            epoch(second),
            epoch(first)
        )
    };
    match part {
        "second" => seconds(1),
        "minute" => seconds(60),
        "hour" => seconds(3600),
        "day" => seconds(86_400),
        "week" => seconds(604_800),
        "month" => format!("CAST({} - {} AS BIGINT)", months(second), months(first)),
        "quarter" => format!(
            "CAST(trunc(({} - {}) / 3) AS BIGINT)",
            months(second),
            months(first)
        ),
        _ => format!(
            "CAST(date_part('year', CAST({second} AS TIMESTAMP)) - date_part('year', CAST({first} AS TIMESTAMP)) AS BIGINT)"
        ),
    }
}

/// Hex MD5 of a VARCHAR expression.
pub fn hash_sql(dialect: Dialect, expr: &str) -> String {
    match dialect {
        Dialect::DataFusion => format!("md5({expr})"),
        Dialect::Trino => format!("lower(to_hex(md5(to_utf8({expr}))))"),
    }
}

/// A portable type name as SQL.
fn sql_type(ty: &str) -> Result<String, JinjaError> {
    let t = ty.trim().to_ascii_lowercase();
    Ok(match t.as_str() {
        "string" | "varchar" | "text" => "VARCHAR".into(),
        "int" | "integer" => "INTEGER".into(),
        "bigint" | "long" => "BIGINT".into(),
        "double" | "float" => "DOUBLE".into(),
        "boolean" | "bool" => "BOOLEAN".into(),
        "date" => "DATE".into(),
        "timestamp" => "TIMESTAMP".into(),
        d if d.starts_with("decimal(") => d.to_ascii_uppercase(),
        other => {
            return Err(failed(format!(
                "'{other}' is not a type safe_cast knows: use string, int, bigint, double, boolean, date, timestamp or decimal(p,s)"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Names;
    impl Resolve for Names {
        fn model(&self, name: &str) -> Result<String, ResolveError> {
            if name == "missing" {
                Err(ResolveError::UnknownModel {
                    name: name.into(),
                    hint: String::new(),
                })
            } else {
                Ok(format!("gold.{name}"))
            }
        }
        fn source(&self, source: &str, table: &str) -> Result<String, ResolveError> {
            Ok(format!(
                "{}.{table}",
                floe_core::Layer::Silver.namespace(source)
            ))
        }
    }

    fn ctx(dialect: Dialect) -> RenderCtx {
        RenderCtx {
            resolver: Arc::new(Names),
            dialect,
            is_incremental: false,
            this: Some("gold.m".into()),
            vars: Arc::new(BTreeMap::from([(
                "since".into(),
                serde_json::json!("2026-01-01"),
            )])),
            extra: Default::default(),
        }
    }

    #[test]
    fn records_refs_sources_and_config_and_resolves_them() {
        let macros = vec![(
            "macros/util.sql".to_owned(),
            "{% macro cents(col) %}({{ col }} * 100){% endmacro %}\n{%- macro current(rel) -%}SELECT * FROM {{ ref(rel) }}{%- endmacro %}".to_owned(),
        )];
        let mut r = Renderer::new(&macros).unwrap();
        r.add(
            "models/m.sql",
            "{{ config(materialized='incremental', unique_key=['id'], tags=['daily']) }}\nSELECT p.id, {{ cents('p.amount') }} AS cents\nFROM {{ source('nomis', 'people') }} p JOIN {{ ref('dim') }} d ON p.id = d.id\n{% if is_incremental() %}WHERE p.x > (SELECT max(x) FROM {{ this }}){% endif %} AND d.since >= '{{ var('since') }}'\n-- {{ current('other') }}",
        )
        .unwrap();
        let out = r.render("models/m.sql", &ctx(Dialect::DataFusion)).unwrap();
        assert!(out.sql.contains("(p.amount * 100) AS cents"), "{}", out.sql);
        assert!(
            out.sql
                .contains("FROM silver_nomis.people p JOIN gold.dim d")
        );
        assert!(!out.sql.contains("max(x)"));
        assert!(out.sql.contains("'2026-01-01'"));
        // A ref made inside a user macro is recorded too.
        assert!(out.sql.contains("SELECT * FROM gold.other"), "{}", out.sql);
        assert_eq!(
            out.deps,
            vec![
                Dep::Source {
                    source: "nomis".into(),
                    table: "people".into()
                },
                Dep::Ref { name: "dim".into() },
                Dep::Ref {
                    name: "other".into()
                },
            ]
        );
        assert_eq!(out.config["materialized"], "incremental");
        assert_eq!(out.config["unique_key"], serde_json::json!(["id"]));
        let mut inc = ctx(Dialect::DataFusion);
        inc.is_incremental = true;
        let out = r.render("models/m.sql", &inc).unwrap();
        assert!(out.sql.contains("SELECT max(x) FROM gold.m"), "{}", out.sql);
    }

    #[test]
    fn errors_name_the_template_and_line() {
        let mut r = Renderer::new(&[]).unwrap();
        r.add("models/a.sql", "SELECT 1\nFROM {{ ref('missing') }}")
            .unwrap();
        let e = r
            .render("models/a.sql", &ctx(Dialect::DataFusion))
            .unwrap_err();
        assert_eq!(e.template, "models/a.sql");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("there is no model 'missing'"), "{e}");
        r.add("models/b.sql", "SELECT {{ undefined_thing }}")
            .unwrap();
        let e = r
            .render("models/b.sql", &ctx(Dialect::DataFusion))
            .unwrap_err();
        assert!(e.message.contains("undefined"), "{e}");
        r.add("models/c.sql", "SELECT {{ var('nope') }}").unwrap();
        let e = r
            .render("models/c.sql", &ctx(Dialect::DataFusion))
            .unwrap_err();
        assert!(e.to_string().contains("vars:"), "{e}");
        let e = r.add("models/d.sql", "SELECT {% if %}").unwrap_err();
        assert!(e.to_string().starts_with("models/d.sql:1:"), "{e}");
    }

    #[test]
    fn cross_engine_macros_render_per_dialect() {
        let mut r = Renderer::new(&[]).unwrap();
        r.add(
            "t.sql",
            "{{ dateadd('day', 3, 'd') }}|{{ datediff('a', 'b', 'day') }}|{{ hash('x') }}|{{ surrogate_key(['a', 'b']) }}|{{ safe_cast('x', 'bigint') }}|{{ current_timestamp() }}|{{ date_trunc('month', 'd') }}",
        )
        .unwrap();
        let df = r.render("t.sql", &ctx(Dialect::DataFusion)).unwrap().sql;
        let trino = r.render("t.sql", &ctx(Dialect::Trino)).unwrap().sql;
        assert!(df.starts_with("(d + INTERVAL '3 day')|"), "{df}");
        assert!(trino.starts_with("date_add('day', 3, d)|"), "{trino}");
        assert!(df.contains("|md5(CAST(x AS VARCHAR))|"), "{df}");
        assert!(
            trino.contains("lower(to_hex(md5(to_utf8(CAST(x AS VARCHAR)))))"),
            "{trino}"
        );
        assert!(trino.contains("date_diff('day'"), "{trino}");
        assert!(df.contains("TRY_CAST(x AS BIGINT)") && trino.contains("TRY_CAST(x AS BIGINT)"));
        assert!(df.contains("|now()|") && trino.contains("|current_timestamp|"));
        let e = Renderer::new(&[])
            .and_then(|mut r| {
                r.add("u.sql", "{{ dateadd('fortnight', 1, 'd') }}")?;
                r.render("u.sql", &ctx(Dialect::Trino))
            })
            .unwrap_err();
        assert!(e.message.contains("not a date part"), "{e}");
    }

    #[test]
    fn macro_names_are_found() {
        assert_eq!(
            macro_names("{% macro a(x) %}{% endmacro %}{%- macro b_2() -%}{%- endmacro %}"),
            vec!["a", "b_2"]
        );
    }
}
