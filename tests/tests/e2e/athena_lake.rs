//! The lake on Athena beyond the port's contract (tests/tests/e2e/lake_contract.rs runs that on
//! the stand-in): what Glue table parameters do to model generation.

use floe_tests::athena_local::StandIn;
use floe_tests::aws::REGION;

#[tokio::test]
async fn glue_table_parameters_generate_models_with_their_parameters() {
    let Some(stand_in) = StandIn::or_skip("athena_lake") else {
        return;
    };
    let world = stand_in.lake().await;
    let (clients, prefix, lake) = (&world.clients, world.prefix.clone(), world.lake.clone());
    // A project whose table opts in to no template in YAML; Glue says which and with what.
    let dir = tempfile::tempdir().unwrap();
    let write = |p: &str, s: &str| {
        let f = dir.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, s).unwrap();
    };
    write(
        "floe.yaml",
        &format!(
            "name: g\nengine: athena\nathena: {{region: {REGION}, workgroup: floe, output_location: 's3://x/r/', landing_bucket: land, lake_location: 's3://x/w'}}\n"
        ),
    );
    write(
        "tables/s.yaml",
        &format!(
            "source: {prefix}\ntables:\n  people:\n    primary_key: [id]\n    columns:\n      id: {{type: bigint}}\n"
        ),
    );
    write(
        "templates/current.sql",
        "{{ config(materialized=params.materialized | default('table')) }}\nSELECT * FROM {{ source(table.source, table.name) }} WHERE is_current",
    );
    let project = floe_config::Project::load(dir.path()).unwrap();
    let namespace = format!("silver_{prefix}");
    clients
        .glue
        .create_database()
        .database_input(
            aws_sdk_glue::types::DatabaseInput::builder()
                .name(&namespace)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    for (name, params) in [
        (
            "people__data",
            vec![
                ("floe.generate.current", "true"),
                ("floe.generate.current.materialized", "view"),
            ],
        ),
        ("people", vec![]),
    ] {
        let mut input = aws_sdk_glue::types::TableInput::builder().name(name);
        for (k, v) in params {
            input = input.parameters(k, v);
        }
        clients
            .glue
            .create_table()
            .database_name(&namespace)
            .table_input(input.build().unwrap())
            .send()
            .await
            .unwrap();
    }
    let models = floe_pipeline::modelling::load_models(&project, lake.as_ref())
        .await
        .unwrap();
    let name = format!("current_{prefix}_people");
    let m = models.get(&name).unwrap();
    assert_eq!(m.materialized.name(), "view", "the parameter from Glue");
    // Without the Glue opt-in there is no model.
    assert!(
        floe_models::Models::load(&project)
            .unwrap()
            .models
            .is_empty()
    );
}
