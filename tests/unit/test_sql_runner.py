from sql.runner import Migration, load_migrations


def test_migrations_are_numbered_in_order_and_unique() -> None:
    migrations = load_migrations()
    versions = [migration.version for migration in migrations]
    assert versions == sorted(set(versions))
    assert versions[0] == 1


def test_statements_split_on_line_ending_semicolons_and_skip_comments() -> None:
    migration = Migration(
        1,
        "x",
        "-- leading comment\nCREATE TABLE a (s String COMMENT 'a;b') ENGINE = Log;\n"
        "  -- only a comment;\nALTER TABLE a ADD COLUMN n UInt8 ;  \n\n",
    )
    assert migration.statements() == [
        "-- leading comment\nCREATE TABLE a (s String COMMENT 'a;b') ENGINE = Log",
        "ALTER TABLE a ADD COLUMN n UInt8",
    ]


def test_checksum_changes_with_the_text() -> None:
    assert Migration(1, "x", "SELECT 1").checksum != Migration(1, "x", "SELECT 2").checksum
