-- A recipe the scheduler tests run in a subprocess (to signal or kill it):
--   rasrun run tests/recipes/pool_run.lua PROJECT_DIR [SLOTS]
-- RASRUN_TEST_RUNDIR and RASRUN_TEST_WORKDIR choose the run and work folders
-- (default work folder: PROJECT_DIR/.work, which goes with the test's folder),
-- RASRUN_TEST_ENGINE the engine kind (default linux), RASRUN_TEST_KEEP=1
-- keeps failed attempts' work folders (keep_scratch), RASRUN_TEST_AGAIN=1
-- runs twice, each run in a pcall (a recipe that goes on after a stop),
-- RASRUN_TEST_TWO=1 makes the pool two workers of SLOTS slots, A (tier 0)
-- and B (tier 1), and RASRUN_TEST_RETRIES sets retries.
local rasrun = require "rasrun"
local dir, slots = arg[1], math.tointeger(tonumber(arg[2] or "2"))
local kind = os.getenv("RASRUN_TEST_ENGINE") or "linux"
local function worker(name, tier)
  return rasrun.worker { type = "local", name = name, slots = slots, kill_grace = 0.5, tier = tier,
                         workdir = os.getenv("RASRUN_TEST_WORKDIR") or (dir .. "/.work"),
                         engine = { kind = kind, home = assert(rasrun.sim.home(kind)) } }
end
local pool = os.getenv("RASRUN_TEST_TWO") == "1" and rasrun.pool { worker("A", 0), worker("B", 1) }
  or rasrun.pool { worker("here", 0) }
-- RASRUN_TEST_PROGRESS=auto: the display rasrun picks (live on a terminal)
local progress = os.getenv("RASRUN_TEST_PROGRESS") ~= "auto" and "plain" or nil
local function run_in(run_dir)
  return pool:run { project = dir .. "/Sample.prj", progress = progress, run_dir = run_dir,
                    keep_scratch = os.getenv("RASRUN_TEST_KEEP") == "1",
                    retries = math.tointeger(tonumber(os.getenv("RASRUN_TEST_RETRIES") or "0")) }
end
if os.getenv("RASRUN_TEST_AGAIN") == "1" then
  -- a recipe that catches what stops a run, and runs again
  print("caught", pcall(run_in, os.getenv("RASRUN_TEST_RUNDIR")))
  print("finished again", pcall(run_in, os.getenv("RASRUN_TEST_RUNDIR") .. "-again"))
  return 0
end
local run = run_in(os.getenv("RASRUN_TEST_RUNDIR"))
print("finished", run.ok)
