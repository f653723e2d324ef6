//! BACKWARD compatibility of every schema change: for each superseded version found in
//! `avro/history/` (discovered at test time, so a new file is checked without touching this
//! test), the current schema can read it by Avro's rules, and data written with it decodes with
//! today's `Codec` into today's type, new fields taking their defaults.

use std::{fs, path::PathBuf};

use alpes_schemas::{
    apache_avro::{
        schema::{RecordSchema, Schema},
        schema_compatibility::{Compatibility, SchemaCompatibility},
        types::Value,
        GenericSingleObjectWriter,
    },
    catalog, Codec, Event, EventoUsoDatos, ImagenAnonimizada, ImagenRechazada, ImagenRegistrada, IntentoLogin, PagoProcesado,
    PagoRechazado, RegistroAuditoria, UsuarioRegistrado,
};

fn avro_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("avro")
}

/// `(record name, version, schema)` for every file in `avro/history/`.
fn history() -> Vec<(String, u32, Schema)> {
    let mut found = Vec::new();
    for entry in fs::read_dir(avro_dir().join("history")).expect("avro/history is readable") {
        let path = entry.expect("a history entry").path();
        let file = path.file_name().and_then(|f| f.to_str()).expect("a UTF-8 file name").to_owned();
        if !file.ends_with(".avsc") {
            continue;
        }
        let (name, version) = file
            .strip_suffix(".avsc")
            .and_then(|f| f.rsplit_once(".v"))
            .unwrap_or_else(|| panic!("{file}: not <Name>.v<N>.avsc"));
        let version: u32 = version.parse().unwrap_or_else(|_| panic!("{file}: version is not a number"));
        let schema = Schema::parse_str(&fs::read_to_string(&path).expect("readable")).unwrap_or_else(|e| panic!("{file}: {e}"));
        found.push((name.to_owned(), version, schema));
    }
    found.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    found
}

fn current(name: &str) -> Schema {
    let path = avro_dir().join(format!("{name}.avsc"));
    let text = fs::read_to_string(&path).unwrap_or_else(|_| panic!("{name} has history but no avro/{name}.avsc"));
    Schema::parse_str(&text).expect("the current schema parses")
}

/// A value of `schema` with every field set, unions on their last (non-null) branch.
fn sample(schema: &Schema) -> Value {
    let resolved = apache_avro::schema::ResolvedSchema::try_from(schema).expect("the schema resolves");
    sample_of(schema, resolved.get_names())
}

/// [`sample`], with the schema's named types for its references (a record used twice, like
/// `Profile` under `profile` and `perfil`).
fn sample_of(schema: &Schema, names: &apache_avro::schema::NamesRef<'_>) -> Value {
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(true),
        Schema::Int => Value::Int(7),
        Schema::Long => Value::Long(70_000_000_000),
        Schema::TimestampMillis => Value::TimestampMillis(1_760_000_000_000),
        Schema::String => Value::String("sample".into()),
        Schema::Array(array) => Value::Array(vec![sample_of(&array.items, names)]),
        Schema::Map(map) => Value::Map([("key".to_owned(), sample_of(&map.types, names))].into()),
        Schema::Union(union) => {
            let last = union.variants().len() - 1;
            Value::Union(
                u32::try_from(last).expect("a small union"),
                Box::new(sample_of(&union.variants()[last], names)),
            )
        }
        Schema::Record(RecordSchema { fields, .. }) => {
            Value::Record(fields.iter().map(|f| (f.name.clone(), sample_of(&f.schema, names))).collect())
        }
        Schema::Ref { name } => sample_of(names.get(name).unwrap_or_else(|| panic!("{name:?} is not defined")), names),
        other => panic!("extend `sample` for {other:?}"),
    }
}

/// Writes `value` with `old` as single-object (apache-avro's own writer), reads it with the
/// current codec as `E`, and compares with what Avro resolution says it should be.
async fn old_data_reads_as_current<E: Event>(old: &Schema, value: Value) {
    let decoded: E = Codec::single_object()
        .decode(&single_object(old, value.clone()))
        .await
        .unwrap_or_else(|e| panic!("{}: old data does not decode: {e}", E::NAME));
    let expected = value
        .resolve(E::schema())
        .expect("Avro resolves the old value to the current schema");
    let actual = alpes_schemas::apache_avro::to_value(&decoded)
        .and_then(|v| v.resolve(E::schema()))
        .expect("the event fits its schema");
    // The types keep the old names; a new name's value is the old one's, written again on the
    // way out, so the comparison leaves the new names aside (an old version may carry them).
    let new_names: Vec<&str> = [E::NAME, "Profile"]
        .iter()
        .flat_map(|r| alpes_schemas::renamed::renames(r).iter().map(|(_, new)| *new))
        .collect();
    assert_eq!(without(actual, &new_names), without(expected, &new_names), "{}", E::NAME);
}

/// `value` with the fields named in `names` set to null, at every depth.
fn without(value: Value, names: &[&str]) -> Value {
    match value {
        Value::Record(fields) => Value::Record(
            fields
                .into_iter()
                .map(|(n, v)| {
                    let v = if names.contains(&n.as_str()) {
                        Value::Union(0, Box::new(Value::Null))
                    } else {
                        without(v, names)
                    };
                    (n, v)
                })
                .collect(),
        ),
        Value::Union(i, inner) => Value::Union(i, Box::new(without(*inner, names))),
        other => other,
    }
}

/// `value` written with `schema` as single-object by apache-avro's own writer.
fn single_object(schema: &Schema, value: Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer = GenericSingleObjectWriter::new_with_capacity(schema, 1024).expect("a single-object writer");
    writer.write_value(value, &mut bytes).expect("the value fits the schema");
    bytes
}

#[test]
fn there_is_history_to_check() {
    assert!(!history().is_empty());
}

#[test]
fn history_versions_of_each_event_count_up_from_one() {
    let history = history();
    for (name, version, _) in &history {
        assert!(
            *version == 1 || history.iter().any(|(n, v, _)| n == name && *v == version - 1),
            "{name}.v{version} has no v{}",
            version - 1
        );
    }
}

#[test]
fn every_history_file_is_a_different_version_of_its_own_record() {
    for (name, version, schema) in history() {
        assert_eq!(
            schema.name().map(|n| n.name()),
            Some(name.as_str()),
            "{name}.v{version} names another record"
        );
        assert_ne!(
            catalog::fingerprint(&schema),
            catalog::fingerprint(&current(&name)),
            "{name}.v{version} is identical to the current schema"
        );
    }
}

#[test]
fn the_current_schema_can_read_every_previous_version() {
    for (name, version, old) in history() {
        let verdict = SchemaCompatibility::can_read(&old, &current(&name));
        assert_eq!(
            verdict.as_ref().ok(),
            Some(&Compatibility::Full),
            "{name}.v{version} → current is not BACKWARD compatible: {verdict:?}"
        );
    }
}

/// The other way round: a consumer still reading with any earlier version reads what is written
/// today. A renamed field is written under its old name too ([`alpes_schemas::renamed`]), so it
/// holds through a deprecation period; a plain rename would fail here.
#[test]
fn every_previous_version_can_read_the_current_schema() {
    for (name, version, old) in history() {
        let verdict = SchemaCompatibility::can_read(&current(&name), &old);
        assert_eq!(
            verdict.as_ref().ok(),
            Some(&Compatibility::Full),
            "current → {name}.v{version} is not FORWARD compatible: {verdict:?}"
        );
    }
}

#[tokio::test]
async fn data_written_with_every_previous_version_decodes_into_the_current_type() {
    for (name, version, old) in history() {
        let value = sample(&old);
        match name.as_str() {
            ImagenRegistrada::NAME => old_data_reads_as_current::<ImagenRegistrada>(&old, value).await,
            ImagenAnonimizada::NAME => old_data_reads_as_current::<ImagenAnonimizada>(&old, value).await,
            ImagenRechazada::NAME => old_data_reads_as_current::<ImagenRechazada>(&old, value).await,
            UsuarioRegistrado::NAME => old_data_reads_as_current::<UsuarioRegistrado>(&old, value).await,
            IntentoLogin::NAME => old_data_reads_as_current::<IntentoLogin>(&old, value).await,
            EventoUsoDatos::NAME => old_data_reads_as_current::<EventoUsoDatos>(&old, value).await,
            PagoProcesado::NAME => old_data_reads_as_current::<PagoProcesado>(&old, value).await,
            PagoRechazado::NAME => old_data_reads_as_current::<PagoRechazado>(&old, value).await,
            RegistroAuditoria::NAME => old_data_reads_as_current::<RegistroAuditoria>(&old, value).await,
            other => panic!("{other}.v{version}: no such event"),
        }
    }
}

#[tokio::test]
async fn fields_added_since_v1_take_their_defaults() {
    let old = history()
        .into_iter()
        .find(|(n, v, _)| n == ImagenAnonimizada::NAME && *v == 1)
        .expect("ImagenAnonimizada.v1")
        .2;
    let event: ImagenAnonimizada = Codec::single_object().decode(&single_object(&old, sample(&old))).await.unwrap();
    assert_eq!((event.regions_burned, event.body_part, event.tipo_imagen), (0, None, None));
    assert_eq!(event.image_id, "sample");
}

/// `schema` with one more field.
fn with_field(schema: &str, field: &str) -> Schema {
    let mut json: serde_json::Value = serde_json::from_str(schema).expect("schema JSON");
    let fields = json["fields"].as_array_mut().expect("a record");
    fields.push(serde_json::from_str(field).expect("field JSON"));
    Schema::parse(&json).expect("a valid schema")
}

const V1: &str = r#"{"type": "record", "name": "T", "namespace": "io.alpes.events", "fields": [{"name": "a", "type": "int"}]}"#;

#[test]
fn the_checker_rejects_a_new_field_without_a_default() {
    let old = Schema::parse_str(V1).unwrap();
    let new = with_field(V1, r#"{"name": "b", "type": "string"}"#);
    assert!(SchemaCompatibility::can_read(&old, &new).is_err());
    let new = with_field(V1, r#"{"name": "b", "type": ["null", "string"], "default": null}"#);
    assert!(SchemaCompatibility::can_read(&old, &new).is_ok());
}

#[test]
fn the_checker_rejects_a_type_change_but_allows_a_promotion() {
    let old = Schema::parse_str(V1).unwrap();
    let narrowed = Schema::parse_str(&V1.replace(r#""int""#, r#""string""#)).unwrap();
    assert!(SchemaCompatibility::can_read(&old, &narrowed).is_err());
    let promoted = Schema::parse_str(&V1.replace(r#""int""#, r#""long""#)).unwrap();
    assert!(SchemaCompatibility::can_read(&old, &promoted).is_ok());
}

#[test]
fn the_checker_rejects_removing_a_field_without_a_default_for_old_readers_only() {
    // Removing `a` is fine BACKWARD (new reader ignores it) but breaks old readers of new data.
    let old = Schema::parse_str(V1).unwrap();
    let removed = Schema::parse_str(r#"{"type": "record", "name": "T", "namespace": "io.alpes.events", "fields": []}"#).unwrap();
    assert!(SchemaCompatibility::can_read(&old, &removed).is_ok());
    assert!(SchemaCompatibility::can_read(&removed, &old).is_err());
}
