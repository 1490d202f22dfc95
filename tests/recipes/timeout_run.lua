-- A recipe tests/valgrind-core runs: a plan that hangs is stopped by its
-- timeout while another finishes, on a local pool. Exit 0 only when both
-- ended as they should.
--   rasrun run tests/recipes/timeout_run.lua DIR
local rasrun = require "rasrun"
local dir = assert(arg[1], "usage: rasrun run tests/recipes/timeout_run.lua DIR")
rasrun.sample.write(dir, { plans = { { title = "hangs", mode = "hang" }, { title = "quick", seconds = 0.1 } } })
local pool = rasrun.pool {
  rasrun.worker { type = "local", name = "here", slots = 2, kill_grace = 0.5,
                  engine = { kind = "linux", home = assert(rasrun.sim.home("linux")) } },
}
local run = pool:run { project = dir .. "/Sample.prj", timeout = 1, progress = "plain" }
local by = {}
for _, r in ipairs(run.results) do by[r.plan] = r end
local hung, quick = by["01"], by["02"]
local ok = hung.status == "failed" and tostring(hung.reason):find("timed out", 1, true) ~= nil
  and quick.status == "ok"
print(ok and "as expected" or ("unexpected: 01 %s (%s), 02 %s"):format(hung.status, tostring(hung.reason),
  quick.status))
return ok and 0 or 1
