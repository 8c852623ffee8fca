//! floe's gold layer on paper: the project's models (hand-written and generated from
//! templates), rendered with Jinja per dialect, their DAG and selectors, the SQL of each
//! materialization and of each data test. Nothing here touches the lake; the pipeline's
//! modelling and audit stages run what this crate renders.

pub mod dag;
pub mod materialize;
pub mod model;
pub mod project;
pub mod render;

pub use dag::{Dag, Manifest, select};
pub use project::{GOLD, Materialized, Model, Models};
pub use render::{Dep, RenderCtx, RenderError, Renderer, Resolve};
