-- Run a project's plans on the workers of a ras-commander RemoteWorkers.json
-- (local and ssh entries; other worker types are reported and skipped).
--
--   rasrun run remote-workers RemoteWorkers.json models/Creek/Creek.prj [PLAN...]
--
-- Entries need the engine: ras_exe_path (.../Ras.exe or .../bin/RasUnsteady)
-- or a rasrun "engine" object; ssh entries may also carry the ssh worker's
-- settings (docs/workers.md): known_hosts, host_key, identity, agent,
-- passphrase_env, password_env, keepalive, connect_timeout, io_timeout,
-- macs, ciphers.
local rasrun = require "rasrun"

-- `rasrun workers remote-workers RemoteWorkers.json` probes the workers:
-- no project is needed then
local probing = require("rasrun.runtime").probe_only
local USAGE = probing and "usage: rasrun workers remote-workers RemoteWorkers.json"
  or "usage: rasrun run remote-workers RemoteWorkers.json PROJECT.prj [PLAN...]"
local json_file, prj_path = arg[1], arg[2]
if json_file == "--help" or json_file == "-h" then
  print(USAGE .. "\n\n" .. (probing and [[
Probes the workers of a ras-commander RemoteWorkers.json (its local and ssh
entries; other worker types are reported and skipped): connection, engine,
cores, disk.]] or [[
Runs the project's plans (or the PLANs given, as 01 or p01) on the workers of
a ras-commander RemoteWorkers.json: its local and ssh entries; other worker
types are reported and skipped. Entries need the engine: ras_exe_path
(.../Ras.exe or .../bin/RasUnsteady) or a rasrun "engine" object. Each plan
gets up to 2 retries and the standard checks (volume error below 1%).]]))
  return 0
end
if not json_file or (not prj_path and not probing) then rasrun.fail(USAGE, 2) end
local ok, workers, skipped = pcall(rasrun.workers_from_json, json_file)
if not ok then rasrun.fail(workers, 2) end -- no such file, not JSON, no "workers" array
if #workers == 0 then
  rasrun.fail(("%s: no usable worker (%d skipped)"):format(json_file, #skipped), 2)
end
if probing then return rasrun.pool(workers):run { projects = {} } end -- probes them, and stops
local prj, err = rasrun.project.open(prj_path)
if not prj then rasrun.fail(err, 2) end
local plans, given = nil, {}
for i = 3, #arg do
  local found, plan = pcall(prj.plan, prj, arg[i])
  if not found or not plan then rasrun.fail(("%s has no plan %s"):format(prj_path, arg[i]), 2) end
  if given[plan.number] then rasrun.fail(("plan %s is given twice"):format(plan.number), 2) end
  given[plan.number] = true
  plans = plans or {}
  plans[#plans + 1] = plan.number
end

local run = rasrun.pool(workers):run {
  project = prj,
  plans = plans,
  retries = 2,
  check = rasrun.checks.standard { max_volume_error = 1.0 },
}
for _, r in ipairs(run.results) do
  print(("%-4s %-10s %-12s %d attempt(s) %6.1f s %s"):format(r.plan, r.status, r.worker or "-",
    r.attempts, r.elapsed, r.reason or ""))
end
