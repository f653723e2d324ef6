use super::super::check::{assert_binds_one_marker_per_column, assert_names_only_schema, schema_columns, table_of};
use super::*;
use std::collections::HashMap;

#[test]
fn a_jti_row_lives_until_its_revocation_ends_plus_a_margin_and_an_ended_one_is_not_written() {
    assert_eq!(jti_ttl_secs(10_000, 10_000), Some(300));
    assert_eq!(jti_ttl_secs(10_001, 10_000), Some(301));
    assert_eq!(jti_ttl_secs(70_000, 10_000), Some(360));
    assert_eq!(jti_ttl_secs(9_999, 10_000), None);
    // The conformance suite's far future is capped at ScyllaDB's largest TTL.
    assert_eq!(jti_ttl_secs(4_000_000_000_000, 1_700_000_000_000), Some(630_720_000));
    assert_eq!(jti_ttl_secs(i64::MAX, i64::MIN), Some(630_720_000));
}

#[test]
fn a_use_is_written_at_its_own_time_but_never_far_ahead_of_the_clock() {
    let wall = 1_700_000_000_000_000;
    assert_eq!(use_timestamp(1_700_000_000_000, wall), wall);
    assert_eq!(use_timestamp(500, wall), 500_000);
    assert_eq!(use_timestamp(i64::MAX, wall), wall + MAX_AHEAD_MICROS);
    assert!(use_timestamp(400, wall) < use_timestamp(500, wall), "the later use wins");
}

fn claim() -> ClaimRow {
    ClaimRow {
        email: "ana@example.org".into(),
        user_id: Some("u1".into()),
        nombre: Some("Ana".into()),
        password_hash: Some("$argon2id$...".into()),
        user_role: Some("proveedor".into()),
        organization: None,
        created_at: Some(1000),
        created_by: Some("u1".into()),
    }
}

#[test]
fn a_claim_carries_the_whole_new_account() {
    let a = claim().account().unwrap().unwrap();
    assert_eq!(
        (a.user_id.as_str(), a.email.as_str(), a.role, a.created_at, a.organization),
        ("u1", "ana@example.org", Role::Proveedor, 1000, None)
    );
    assert!(ClaimRow {
        password_hash: None,
        ..claim()
    }
    .account()
    .unwrap()
    .is_none());
    assert!(ClaimRow {
        user_role: Some("root".into()),
        ..claim()
    }
    .account()
    .is_err());
}

#[test]
fn an_account_row_reads_as_sqlite_stores_it_and_a_partial_row_is_no_account() {
    let row = AccountRow {
        user_id: "u1".into(),
        nombre: Some("Ana".into()),
        email: Some("ana@example.org".into()),
        password_hash: Some("h".into()),
        user_role: Some("admin".into()),
        created_at: Some(1000),
        created_by: Some("u1".into()),
        failed_logins: Some(2),
        first_failure_at: Some(10),
        ..AccountRow::default()
    };
    let a = row.account().unwrap().unwrap();
    assert_eq!(
        (a.role, a.failed_logins, a.first_failure_at, a.locked_until, a.published),
        (Role::Admin, 2, Some(10), None, false)
    );
    assert!(AccountRow {
        user_id: "u1".into(),
        failed_logins: Some(1),
        ..AccountRow::default()
    }
    .account()
    .unwrap()
    .is_none());
}

#[test]
fn a_refresh_row_without_its_creation_cells_is_no_token() {
    let row = RefreshRow {
        family_id: Some("fam".into()),
        user_id: Some("u1".into()),
        user_role: Some("consumidor".into()),
        expires_at: Some(1100),
        used_at: None,
    };
    assert_eq!(
        row.stored(),
        Some(StoredRefresh {
            family_id: "fam".into(),
            user_id: "u1".into(),
            role: "consumidor".into(),
            expires_at: 1100,
            used_at: None,
        })
    );
    assert!(RefreshRow {
        used_at: Some(5),
        ..RefreshRow::default()
    }
    .stored()
    .is_none());
}

fn key(id: &str, at: i64) -> ApiKey {
    ApiKey {
        key_id: id.into(),
        key_hash: format!("hash-{id}"),
        role: Role::Proveedor,
        user_id: "u1".into(),
        name: "bridge".into(),
        created_by: "u3".into(),
        created_at: at,
        revoked_at: None,
        last_used_at: None,
    }
}

#[test]
fn a_key_touched_but_never_created_is_no_key() {
    let touched = ApiKeyRow {
        key_id: "k9".into(),
        last_used_at: Some(5),
        ..ApiKeyRow::default()
    };
    assert!(touched.key().unwrap().is_none());
    let k = key("k1", 10);
    let row = ApiKeyRow {
        key_id: k.key_id.clone(),
        key_hash: Some(k.key_hash.clone()),
        user_role: Some("proveedor".into()),
        user_id: Some(k.user_id.clone()),
        name: Some(k.name.clone()),
        created_by: Some(k.created_by.clone()),
        created_at: Some(10),
        revoked_at: None,
        last_used_at: None,
    };
    assert_eq!(row.key().unwrap(), Some(k));
}

#[test]
fn a_listing_row_counts_only_while_it_is_its_keys_and_each_key_once() {
    let listed = vec![
        (30, "k3".to_owned()),
        (20, "k2".to_owned()),
        // A second insert of k2's id with another time: the key kept its own.
        (15, "k2".to_owned()),
        (10, "k1".to_owned()),
        (5, "gone".to_owned()),
    ];
    let keys = vec![
        Some(key("k3", 30)),
        Some(key("k2", 20)),
        Some(key("k2", 20)),
        Some(key("k1", 10)),
        None,
    ];
    let ids: Vec<_> = listed_keys(&listed, keys).into_iter().map(|k| k.key_id).collect();
    assert_eq!(ids, vec!["k3", "k2", "k1"]);
}

const ALL: [&str; 28] = [
    EMAIL_CLAIM,
    EMAIL_RELEASE,
    EMAIL_READ,
    ACCOUNT_INSERT,
    ACCOUNT_READ,
    FAILURES_READ,
    FAILURES_CAS,
    ACCOUNT_PUBLISH,
    ACCOUNT_DELETE,
    ROLE_WRITE,
    ROLE_DELETE,
    ROLE_SCAN,
    UNPUBLISHED_WRITE,
    UNPUBLISHED_DELETE,
    UNPUBLISHED_SCAN,
    REFRESH_INSERT,
    REFRESH_READ,
    REFRESH_USE,
    FAMILY_READ,
    FAMILY_REVOKE,
    JTI_REVOKE,
    JTI_READ,
    KEY_INSERT,
    KEY_READ,
    KEY_REVOKE,
    KEY_TOUCH,
    KEY_LIST_WRITE,
    KEY_LIST_SCAN,
];

#[test]
fn every_statement_names_only_tables_and_columns_of_the_schema() {
    const KEYWORDS: [&str; 19] = [
        "select",
        "from",
        "where",
        "and",
        "insert",
        "into",
        "values",
        "update",
        "set",
        "delete",
        "if",
        "not",
        "exists",
        "null",
        "true",
        "using",
        "ttl",
        "timestamp",
        "limit",
    ];
    let tables = schema_columns("003_identity.cql");
    assert_eq!(tables.len(), 9, "{:?}", tables.keys());
    let mut used = HashSet::new();
    for cql in ALL {
        used.insert(assert_names_only_schema(cql, &tables, &KEYWORDS, true));
    }
    assert_eq!(used.len(), tables.len(), "a table of the schema has no statement");
}

/// The primary key of each table `schemas/cql/003_identity.cql` creates: (partition key, clustering columns).
fn schema_keys() -> HashMap<String, (Vec<String>, Vec<String>)> {
    let source = alpes_schemas::cql::MIGRATIONS
        .iter()
        .find(|m| m.name == "003_identity.cql")
        .unwrap()
        .source;
    let mut keys = HashMap::new();
    for stmt in alpes_schemas::cql::statements(source) {
        let Some(rest) = stmt.strip_prefix("CREATE TABLE IF NOT EXISTS {keyspace}.") else {
            continue;
        };
        let name = rest.split_once('(').unwrap().0.trim().to_owned();
        let (_, key) = rest.split_once("PRIMARY KEY ((").unwrap();
        let (partition, rest) = key.split_once(')').unwrap();
        let clustering = rest.split_once(')').unwrap().0;
        let list = |s: &str| s.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect();
        keys.insert(name, (list(partition), list(clustering)));
    }
    keys
}

#[test]
fn every_insert_binds_one_marker_per_column_plus_its_ttl_and_every_statement_names_its_key() {
    for cql in ALL.iter().filter(|c| c.starts_with("INSERT")) {
        assert_binds_one_marker_per_column(cql);
    }
    // A read names its partition key; a write names its whole primary key (one row).
    let keys = schema_keys();
    assert_eq!(keys.len(), 9);
    for cql in ALL {
        let table = table_of(cql);
        let (partition, clustering) = &keys[&table];
        let words: HashSet<&str> = cql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).collect();
        let needed = if cql.starts_with("SELECT") {
            partition.clone()
        } else {
            partition.iter().chain(clustering).cloned().collect()
        };
        for column in needed {
            assert!(words.contains(column.as_str()), "{cql} does not name {column}");
        }
    }
    assert_eq!(
        keys["identity_unpublished"],
        (vec!["shard".to_owned()], vec!["created_at".to_owned(), "user_id".to_owned()])
    );
}

#[test]
fn only_the_decisions_are_lightweight_transactions() {
    // The statements that carry an IF: the rest are plain (retried by the driver) and must not.
    let lwt: Vec<&str> = ALL.iter().copied().filter(|c| c.contains(" IF ")).collect();
    assert_eq!(
        lwt,
        vec![
            EMAIL_CLAIM,
            EMAIL_RELEASE,
            ACCOUNT_INSERT,
            FAILURES_CAS,
            ACCOUNT_PUBLISH,
            ACCOUNT_DELETE,
            REFRESH_USE,
            KEY_INSERT,
            KEY_REVOKE
        ]
    );
    // Every write to identity_accounts is one of them (see the module docs).
    for cql in ALL {
        let writes = cql.starts_with("INSERT") || cql.starts_with("UPDATE") || cql.starts_with("DELETE");
        if writes && cql.contains("{ks}.identity_accounts ") {
            assert!(cql.contains(" IF "), "{cql}");
        }
    }
}
