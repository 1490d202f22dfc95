-- One rasrun contender of the dispatch benchmark (tests/bench/dispatch.lua),
-- run as its own process, as a user starts rasrun: opens the benchmark's
-- projects, runs all their plans on SLOTS local slots, and prints its own
-- CPU seconds (the controller's, not its engines') on the last line.
--   rasrun run tests/bench/dispatch_run.lua ROOT check|nocheck SLOTS
local rasrun = require "rasrun"
local fs, path, sys = rasrun.fs, rasrun.path, rasrun.sys

local cpustat = require "cpustat"

local root, mode, slots = arg[1], arg[2], math.tointeger(tonumber(arg[3] or ""))
if not root or (mode ~= "check" and mode ~= "nocheck") or not slots then
  rasrun.fail("usage: rasrun run tests/bench/dispatch_run.lua ROOT check|nocheck SLOTS", 2)
end
local projects = {}
for _, prj in ipairs(fs.glob(path.join(root, "P*/Sample.prj"))) do
  projects[#projects + 1] = assert(rasrun.project.open(prj))
end
local pool = rasrun.pool { rasrun.worker { type = "local", name = "bench", slots = slots,
  workdir = path.join(root, "work"), engine = { kind = "linux", home = rasrun.sim.home("linux") } } }
local run = pool:run { projects = projects, force = true, quiet = true,
                       run_dir = path.join(root, "run" .. sys.monotonic()),
                       check = mode == "check" and rasrun.checks.standard {} or false }
print(("%d ok of %d"):format(run.counts.ok, #run.results))
print(("own cpu %.3f"):format(cpustat.process()))
return run.counts.ok == #run.results and 0 or 1
