import hashlib

from controlplane.versions import content_hash, find_variables


def test_content_hash_is_sha256_of_utf8_content() -> None:
    content = "Héllo {{name}}"
    assert content_hash(content) == "sha256:" + hashlib.sha256(content.encode()).hexdigest()
    assert content_hash(content) != content_hash(content + " ")


def test_variables_come_from_placeholders_and_declarations_in_first_seen_order() -> None:
    content = "Hi {{ customer_name }}, welcome to {{company_name}}. Bye {{customer_name}}."
    assert find_variables(content) == ["customer_name", "company_name"]
    assert find_variables(content, ["tone", "company_name"]) == [
        "tone",
        "company_name",
        "customer_name",
    ]


def test_malformed_placeholders_are_not_variables() -> None:
    assert find_variables("{{ 1abc }} {{}} {single} {{ok}}") == ["ok"]
