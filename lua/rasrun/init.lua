-- rasrun: run HEC-RAS plans on pools of workers.
--
--   local rasrun = require "rasrun"
--   rasrun.project.open(path)       HEC-RAS project files (rasrun.project)
--   rasrun.checks.standard{...}     result checks (rasrun.checks)
--   rasrun.results.read(path)       facts from a result HDF (rasrun.results)
--   rasrun.hdf.open(path)           raw HDF5 access (C)
--   rasrun.worker{...}, rasrun.pool{...}, pool:run{...}   (rasrun.pool module)
--   rasrun.workers_from_json(path)  workers from ras-commander's RemoteWorkers.json
--   rasrun.fail(message [, status]) stop the recipe with a message, no traceback
--
-- Submodules load on first use, so `require "rasrun"` stays cheap.
local M = { version = _RASRUN_VERSION }

local submodules = {
  hdf = "rasrun.hdf", fs = "rasrun.fs", sys = "rasrun.sys", json = "rasrun.json",
  path = "rasrun.path", project = "rasrun.project", checks = "rasrun.checks",
  results = "rasrun.results", sample = "rasrun.sample", hecdate = "rasrun.hecdate",
  sim = "rasrun.sim", cli = "rasrun.cli", engine = "rasrun.engine", report = "rasrun.report",
  ssh = "rasrun.ssh", probe = "rasrun.probe",
  journal = "rasrun.journal",
}

-- Functions that live in submodules (looked up, not wrapped, so that their
-- error messages point at the recipe line that called them).
local functions = {
  worker = { "rasrun.pool", "worker" }, pool = { "rasrun.pool", "pool" },
  workers_from_json = { "rasrun.workers_json", "load" },
}

-- Stops the recipe: `rasrun run` prints message (no Lua traceback: it is
-- meant for the user, as a usage error or a missing file is) and exits with
-- status (default 1; 2 is the convention for a wrong command line).
function M.fail(message, status)
  require("rasrun.runtime").stop(status or 1, message ~= nil and tostring(message) or nil)
end

setmetatable(M, {
  __index = function(t, k)
    local v
    if submodules[k] then v = require(submodules[k])
    elseif functions[k] then v = require(functions[k][1])[functions[k][2]]
    else return nil end
    rawset(t, k, v)
    return v
  end,
})

return M
