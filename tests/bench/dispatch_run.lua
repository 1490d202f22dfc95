-- One rasrun contender of the dispatch benchmark (tests/bench/dispatch.lua),
-- run as its own process, as a user starts rasrun: opens the benchmark's
-- projects, runs all their plans on 2 local slots, and prints its own CPU
-- seconds (the controller's, not its engines') on the last line.
--   rasrun run tests/bench/dispatch_run.lua ROOT check|nocheck
local rasrun = require "rasrun"
local fs, path, sys = rasrun.fs, rasrun.path, rasrun.sys

local root, mode = arg[1], arg[2]
if not root or (mode ~= "check" and mode ~= "nocheck") then
  rasrun.fail("usage: rasrun run tests/bench/dispatch_run.lua ROOT check|nocheck", 2)
end
local projects = {}
for _, prj in ipairs(fs.glob(path.join(root, "P*/Sample.prj"))) do
  projects[#projects + 1] = assert(rasrun.project.open(prj))
end
local pool = rasrun.pool { rasrun.worker { type = "local", name = "bench", slots = 2,
  workdir = path.join(root, "work"), engine = { kind = "linux", home = rasrun.sim.home("linux") } } }
local run = pool:run { projects = projects, force = true, quiet = true,
                       run_dir = path.join(root, "run" .. sys.monotonic()),
                       check = mode == "check" and rasrun.checks.standard {} or false }
local f = assert(io.open("/proc/self/stat"))
local st = {}
for x in f:read("l"):match("%) (.*)"):gmatch("%S+") do st[#st + 1] = x end
f:close()
print(("%d ok of %d"):format(run.counts.ok, #run.results))
print(("own cpu %.3f"):format((st[12] + st[13]) / 100))
return run.counts.ok == #run.results and 0 or 1
