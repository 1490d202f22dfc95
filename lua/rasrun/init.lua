-- rasrun: run HEC-RAS plans on pools of workers.
--
--   local rasrun = require "rasrun"
--   rasrun.project.open(path)       HEC-RAS project files (rasrun.project)
--   rasrun.checks.standard{...}     result checks (rasrun.checks)
--   rasrun.results.read(path)       facts from a result HDF (rasrun.results)
--   rasrun.hdf.open(path)           raw HDF5 access (C)
--   rasrun.worker{...}, rasrun.pool{...}, pool:run{...}
--
-- Submodules load on first use, so `require "rasrun"` stays cheap.
local M = { version = _RASRUN_VERSION }

local submodules = {
  hdf = "rasrun.hdf", fs = "rasrun.fs", sys = "rasrun.sys", json = "rasrun.json",
  path = "rasrun.path", project = "rasrun.project", checks = "rasrun.checks",
  results = "rasrun.results", sample = "rasrun.sample", hecdate = "rasrun.hecdate",
  sim = "rasrun.sim", cli = "rasrun.cli",
}

setmetatable(M, {
  __index = function(t, k)
    local name = submodules[k]
    if not name then return nil end
    local mod = require(name)
    rawset(t, k, mod)
    return mod
  end,
})

return M
