export const KINDS = [
  { plural: "mcpservers", kind: "MCPServer", title: "MCP servers" },
  { plural: "workflowintegrations", kind: "WorkflowIntegration", title: "Workflows" },
  { plural: "alertrules", kind: "AlertRule", title: "Alert rules" },
  { plural: "teamaccesses", kind: "TeamAccess", title: "Team access" },
];

export const byPlural = Object.fromEntries(KINDS.map((k) => [k.plural, k]));
