"""The stdio proxy: one stdio MCP server process, served as streamable HTTP to many clients.

``devserver-operator stdio-proxy`` runs in its own pod next to a server container that runs its
image unchanged, and reaches that container's stdin and stdout through the Kubernetes attach
API (docs/mcpserver.md, "A stdio server image, attached"). The core (``upstream``, ``http``)
knows nothing of Kubernetes: it is given a way to open a channel to the process, so the tests
drive it against a local subprocess.
"""
