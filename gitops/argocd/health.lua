-- Argo CD health of the devserver.ecosphere.network kinds (MCPServer, WorkflowIntegration,
-- AlertRule, TeamAccess), read from their kstatus conditions and observedGeneration.
--   Progressing: no status yet, an older generation observed, Reconciling=True, or Ready Unknown.
--   Degraded:    Stalled=True (a spec or environment problem), or Ready=False otherwise.
--   Healthy:     Ready=True.
--   Suspended:   Ready=False with reason ScaledToZero: an MCPServer stopped by replicas: 0.
local hs = {}

local function find(conditions, wanted)
  for _, condition in ipairs(conditions) do
    if condition.type == wanted then
      return condition
    end
  end
  return nil
end

local function describe(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return condition.reason or condition.type
end

if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end

local conditions = obj.status.conditions
local stalled = find(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local reconciling = find(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
  return hs
end

local ready = find(conditions, "Ready")
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = ready ~= nil and describe(ready) or "Waiting for the Ready condition"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
if ready.reason == "ScaledToZero" then
  hs.status = "Suspended"
  hs.message = describe(ready)
  return hs
end
hs.status = "Degraded"
hs.message = describe(ready)
return hs
