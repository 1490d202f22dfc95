-- A recipe tests/valgrind-core runs: an on_event handler stops the run with
-- rasrun.fail once a plan is done, while another plan's engine runs; the
-- recipe stops with the handler's status (3) and message.
--   rasrun run tests/recipes/stop_run.lua DIR
local rasrun = require "rasrun"
local dir = assert(arg[1], "usage: rasrun run tests/recipes/stop_run.lua DIR")
rasrun.sample.write(dir, { plans = { { title = "quick", seconds = 0.1 }, { title = "long", seconds = 60 } } })
local pool = rasrun.pool {
  rasrun.worker { type = "local", name = "here", slots = 2, kill_grace = 0.5,
                  engine = { kind = "linux", home = assert(rasrun.sim.home("linux")) } },
}
pool:run { project = dir .. "/Sample.prj", progress = "plain", on_event = function(ev)
  if ev.type == "done" and ev.status == "ok" then rasrun.fail("stopped after " .. ev.job, 3) end
end }
print("not stopped")
return 0
