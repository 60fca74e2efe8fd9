"""What `devserver-operator dev` on kind does to the examples before applying them."""

from __future__ import annotations

from pathlib import Path

from devserver_operator.devmode_kind import internet_bound, with_n8n_api_key
from devserver_operator.render import load_documents

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_n8n_api_key_placeholder_is_replaced_and_nothing_else_changes() -> None:
    documents = [doc for _, doc in load_documents([EXAMPLES])]
    before = [dict(doc) for doc in documents]
    after = with_n8n_api_key(documents, "n8n_api_real")
    secrets = {
        doc["metadata"]["name"]: doc.get("stringData") for doc in after if doc["kind"] == "Secret"
    }
    assert secrets["n8n-api"] == {"apiKey": "n8n_api_real"}
    assert secrets["openhands-session"] != {"apiKey": "n8n_api_real"}
    assert [d["metadata"]["name"] for d in after] == [d["metadata"]["name"] for d in before]


def test_only_remote_servers_on_the_internet_are_excused_from_ready() -> None:
    documents = [doc for _, doc in load_documents([EXAMPLES])]
    assert internet_bound(documents) == {"MCPServer/github"}
