-- Shared test helpers: temporary folders, sample projects, running the
-- rasrun binary, bounded waiting.
local fs = require "rasrun.fs"
local sys = require "rasrun.sys"
local path = require "rasrun.path"
local lu = require "luaunit"

local H = {}

H.root = fs.realpath(".")
H.bin = path.join(H.root, "bin", "rasrun")
H.data = path.join(H.root, "tests", "data")
H.fast = os.getenv("RASRUN_TEST_FAST") == "1"

local temps, spawned = {}, {}

-- A fresh temporary folder, removed by H.cleanup().
function H.tmpdir(tag)
  local d = assert(fs.tempdir("rasrun-test-" .. (tag or "t")))
  temps[#temps + 1] = d
  return d
end

function H.cleanup()
  -- processes a failed test left behind go first (their whole trees)
  for _, pid in ipairs(spawned) do
    if sys.alive(pid) then
      sys.kill_tree(pid, "KILL")
      sys.wait(pid, 5)
    end
  end
  spawned = {}
  for _, d in ipairs(temps) do fs.rmtree(d) end
  temps = {}
end

-- sys.spawn, with the process killed by H.cleanup() if the test leaves it.
function H.spawn(argv, opts)
  local pid, err = sys.spawn(argv, opts)
  if pid then spawned[#spawned + 1] = pid end
  return pid, err
end

-- Writes a sample project; plans default to four quick successful ones.
function H.project(dir, plans, opts)
  opts = opts or {}
  opts.plans = plans or {
    { title = "one", seconds = 0.2 }, { title = "two", seconds = 0.2 },
    { title = "three", seconds = 0.2 }, { title = "four", seconds = 0.2 },
  }
  return require("rasrun.sample").write(dir, opts)
end

-- A file made by tests/h5craft (HDF5 that HEC-RAS rarely writes):
-- H.craft(what, args...) -> its path.
function H.craft(what, ...)
  local file = H.tmpdir("craft") .. "/Crafted.p01.hdf"
  local r = sys.run({ H.root .. "/build/h5craft", what, file, ... }, { timeout = 30 })
  assert(r.code == 0, "h5craft: " .. r.stderr)
  return file
end

-- Makes the sample project's flow u01 read DSS files: hydrology/inflow.dss
-- (also spelt .\Hydrology\.\INFLOW.dss), lateral.dss and -n.dss (all
-- written), an unused one, and one on a Windows drive.
function H.dss_boundaries(dir)
  local u01 = table.concat({
    "Flow Title=Sample Creek, gauged", "Program Version=6.60", "Use Restart= 0 ",
    "Boundary Location=,,,,,Sample 2D,,Inflow", "Interval=1HOUR", "Flow Hydrograph= 0 ",
    "DSS File=", "DSS Path=", "Use DSS=False",
    "Boundary Location=,,,,,Sample 2D,,Gauge", "Interval=1HOUR", "Flow Hydrograph= 0 ",
    "DSS File=.\\hydrology\\inflow.dss", "DSS Path=/SAMPLE/GAUGE/FLOW//1HOUR/OBS/", "Use DSS=True",
    "Boundary Location=,,,,,Sample 2D,,Lateral", "Interval=1HOUR", "Flow Hydrograph= 0 ",
    "DSS File=lateral.dss", "DSS Path=/SAMPLE/LATERAL/FLOW//1HOUR/OBS/", "Use DSS=True",
    "Boundary Location=,,,,,Sample 2D,,Again", "Interval=1HOUR", "Flow Hydrograph= 0 ",
    "DSS File=.\\Hydrology\\.\\INFLOW.dss", "DSS Path=/SAMPLE/GAUGE/FLOW//1HOUR/OBS/", "Use DSS=True",
    "Boundary Location=,,,,,Sample 2D,,Dash", "Interval=1HOUR", "Flow Hydrograph= 0 ",
    "DSS File=-n.dss", "DSS Path=/SAMPLE/DASH/FLOW//1HOUR/OBS/", "Use DSS=True",
    "Boundary Location=,,,,,Sample 2D,,Unused", "Interval=1HOUR", "Flow Hydrograph= 0 ",
    "DSS File=unused.dss", "DSS Path=/SAMPLE/UNUSED/FLOW//1HOUR/OBS/", "Use DSS=False",
    "Boundary Location=,,,,,Sample 2D,,Far", "Interval=1HOUR", "Flow Hydrograph= 0 ",
    "DSS File=C:\\shared\\far.dss", "DSS Path=/SAMPLE/FAR/FLOW//1HOUR/OBS/", "Use DSS=True",
  }, "\r\n") .. "\r\n"
  assert(fs.write(dir .. "/Sample.u01", u01))
  assert(fs.mkdirs(dir .. "/hydrology"))
  assert(fs.write(dir .. "/hydrology/inflow.dss", "DSS inflow"))
  assert(fs.write(dir .. "/lateral.dss", "DSS lateral"))
  assert(fs.write(dir .. "/-n.dss", "DSS dash"))
end

function H.sim(kind) return assert(require("rasrun.sim").home(kind or "linux")) end

-- A copy of the simulated linux install in dir whose RasUnsteady first
-- checks that the .tmp.hdf it writes is writable by its owner (the tests run
-- as root, whom a read-only mode does not stop), as a real user's would need.
function H.engine_needing_a_writable_tmp_hdf(dir)
  local home = dir .. "/hecras"
  for _, argv in ipairs({ { "cp", "-a", H.sim("linux"), home }, { "mkdir", home .. "/bin/real" },
                          { "mv", home .. "/bin/RasUnsteady", home .. "/bin/real/RasUnsteady" } }) do
    local r = sys.run(argv)
    assert(r.code == 0, table.concat(argv, " ") .. ": " .. r.stderr)
  end
  assert(fs.write(home .. "/bin/RasUnsteady", table.concat({ "#!/bin/sh",
    'case $(stat -c %A "$1") in -rw*) ;; *) echo "RasUnsteady: cannot open $1: Permission denied"; exit 2;; esac',
    'exec "$(dirname "$0")/real/RasUnsteady" "$@"' }, "\n") .. "\n"))
  assert(sys.run({ "chmod", "755", home .. "/bin/RasUnsteady" }).code == 0)
  return home
end

-- A copy of the simulated linux install in dir whose RasGeomPreprocess
-- says it cannot read the geometry and exits 2. Returns the install folder.
function H.engine_whose_preprocessor_fails(dir)
  local home = dir .. "/hecras"
  local r = sys.run({ "cp", "-a", H.sim("linux"), home })
  assert(r.code == 0, r.stderr)
  local pre = home .. "/bin/RasGeomPreprocess"
  os.remove(pre)
  assert(fs.write(pre, "#!/bin/sh\necho 'cannot read the geometry' >&2\nexit 2\n"))
  assert(sys.run({ "chmod", "755", pre }).code == 0)
  return home
end

-- A copy of the simulated linux install in dir whose RasUnsteady runs the
-- real one and then leaves a helper (bin/helper, a copy of sleep) running
-- in its process group, as engines that start helpers do. Returns the
-- install folder; H.processes_under(it) finds the helper.
-- An install whose RasUnsteady leaves a helper (a copy of sleep) running
-- after it ends, in its process group; with daemon, one that left the
-- engine's tree and process group at its start (a double fork, setsid) and
-- works in the engine's folder.
function H.engine_leaving_a_helper(dir, daemon)
  local home = dir .. "/hecras"
  for _, argv in ipairs({ { "cp", "-a", H.sim("linux"), home }, { "mkdir", home .. "/bin/real" },
                          { "mv", home .. "/bin/RasUnsteady", home .. "/bin/real/RasUnsteady" },
                          { "cp", "/bin/sleep", home .. "/bin/helper" } }) do
    local r = sys.run(argv)
    assert(r.code == 0, table.concat(argv, " ") .. ": " .. r.stderr)
  end
  local script = daemon
    and { "#!/bin/sh", 'bin=$(dirname "$0")', '( setsid "$bin/helper" 300 </dev/null >/dev/null 2>&1 & )',
          'exec "$bin/real/RasUnsteady" "$@"' }
    or { "#!/bin/sh", 'bin=$(dirname "$0")', '"$bin/real/RasUnsteady" "$@"', "rc=$?",
         '"$bin/helper" 300 </dev/null >/dev/null 2>&1 &', "exit $rc" }
  assert(fs.write(home .. "/bin/RasUnsteady", table.concat(script, "\n") .. "\n"))
  assert(sys.run({ "chmod", "755", home .. "/bin/RasUnsteady" }).code == 0)
  return home
end

function H.local_worker(name, slots, extra)
  local cfg = { type = "local", name = name or "here", slots = slots or 2,
                engine = { kind = "linux", home = H.sim("linux") }, kill_grace = 0.5 }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return require("rasrun.pool").worker(cfg)
end

-- Runs bin/rasrun with the arguments; returns {code, stdout, stderr}.
function H.rasrun(args, opts)
  local argv = { H.bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  opts = opts or {}
  opts.timeout = opts.timeout or 120
  local r = assert(sys.run(argv, opts))
  return r
end

-- Polls fn() until it returns a true value, at most timeout seconds.
function H.wait_for(fn, timeout, what)
  local deadline = sys.monotonic() + (timeout or 10)
  repeat
    local v = fn()
    if v then return v end
    sys.sleep(0.05)
  until sys.monotonic() > deadline
  error(("timed out after %ss waiting for %s"):format(timeout or 10, what or "a condition"), 2)
end

function H.read(p) return assert(fs.read(p)) end

function H.journal(run_dir)
  return assert(require("rasrun.journal").read(path.join(run_dir, "journal.jsonl")))
end

-- Runs pool:run quietly (tests read results, not progress).
function H.run(pool, opts)
  opts.quiet = opts.quiet ~= false
  return pool:run(opts)
end

-- The most attempts of a run's results that overlapped in time.
function H.max_overlap(results)
  local events = {}
  for _, r in ipairs(results) do
    for _, h in ipairs(r.history or {}) do
      events[#events + 1] = { h.launched or h.started, 1 }
      events[#events + 1] = { h.ended, -1 }
    end
  end
  table.sort(events, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  local cur, best = 0, 0
  for _, e in ipairs(events) do
    cur = cur + e[2]
    best = math.max(best, cur)
  end
  return best
end

function H.result(run, plan)
  for _, r in ipairs(run.results) do
    if r.plan == plan then return r end
  end
  error("no result for plan " .. plan)
end

-- Live processes whose executable lies under the folder (engines of an install).
function H.processes_under(dir)
  local found = {}
  for _, name in ipairs(fs.list("/proc")) do
    if name:match("^%d+$") then
      local exe = fs.readlink("/proc/" .. name .. "/exe")
      if exe and exe:find(dir, 1, true) and sys.alive(tonumber(name)) then
        found[#found + 1] = tonumber(name)
      end
    end
  end
  return found
end

function H.need_root()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local r = sys.run({ "id", "-u" })
  if not r or r.stdout ~= "0\n" then lu.skip("needs root (network namespaces)") end
end

return H
