"""The gateway's MCP server (`/mcp`, Streamable HTTP): the fleet's tools, resources and
prompts for AI agents, over the same coordinator client, keys, roles and limits as REST."""
