-- Dispatch overhead: N plans whose engine returns at once (FAKE_RAS_SECONDS=0),
-- on 2 local slots, in one run, side by side with:
--   the floor      a bare C loop that posix_spawns and reaps the engine, 2 at a time
--   xargs -P2      what a user would write: cd into the project, run the engine
--   GNU parallel   the same with parallel -j2
--   rasrun         stages each plan into a work folder, runs the engine, brings
--                  the result back, runs the standard checks, journals every event
--                  (a rasrun process of its own, as the others are: dispatch_run.lua)
--   rasrun run tests/bench/dispatch.lua [N]
local rasrun = require "rasrun"
local sys, fs, path = rasrun.sys, rasrun.fs, rasrun.path

local N = math.tointeger(tonumber(arg[1] or "2000"))
local PER = 50 -- plans per project (HEC-RAS allows p01..p99)
local SLOTS = 2
local root = assert(fs.tempdir("rasrun-bench"))
local ras = rasrun.sim.home("linux") .. "/bin/RasUnsteady"
local floor_bin = arg[2] or "build/spawnfloor"

io.stderr:write(("preparing %d plans in %s ...\n"):format(N, root))
local jobs = {}
for i = 1, (N + PER - 1) // PER do
  local n = math.min(PER, N - (i - 1) * PER)
  local plans = {}
  for k = 1, n do plans[k] = { title = ("bench %d.%d"):format(i, k), seconds = 0 } end
  local dir = path.join(root, ("P%03d"):format(i))
  rasrun.sample.write(dir, { plans = plans })
  for k = 1, n do jobs[#jobs + 1] = ("%s Sample.p%02d.tmp.hdf x01"):format(dir, k) end
end
local input = table.concat(jobs, "\n") .. "\n"
sys.setenv("FAKE_RAS_SECONDS", "0")
-- Every contender runs the engine with the library path real RasUnsteady
-- needs (rasrun sets it for the linux engine; a user's script must too).
local home = rasrun.sim.home("linux")
sys.setenv("LD_LIBRARY_PATH", home .. "/libs:" .. home .. "/libs/mkl:" .. home .. "/libs/rhel_8")

-- Where the time goes, per plan, from /proc: the contender's own CPU, its
-- children's (engines, and sh or perl where they run) and the cores' idle
-- time. On a CPU-bound machine wall time is about (own + children + idle) /
-- cores. Contenders run as child processes of this one.
local cpustat = require "cpustat"
local function usage()
  local own, kids = cpustat.process()
  local idle = cpustat.idle()
  if not own or not idle then return nil end
  return { own = own, kids = kids, idle = idle }
end

-- fn returns ok, detail and, for a contender that reports it, the CPU
-- seconds of its own process (counted in the children's otherwise).
local function timed(fn)
  local u0, t0 = usage(), sys.monotonic()
  local ok, detail, own = fn()
  local secs, u1 = sys.monotonic() - t0, usage()
  local use = u0 and u1 and { own = u1.own - u0.own, kids = u1.kids - u0.kids, idle = u1.idle - u0.idle }
  if use and own then use.own, use.kids = use.own + own, use.kids - own end
  return secs, ok, detail, use
end

-- Each contender runs ROUNDS times, in forward then reverse order, and keeps
-- its best time: the machine's state (page cache, the file system's view of
-- recently deleted files) then favours no one for being first or last.
-- xargs and rasrun run back to back, so that the ratio of each round (printed
-- below the table) compares them at the same speed of the machine, which can
-- drift by a third within one run (the floor's rounds show it). A
-- sync before each (not timed) writes out what the one before left in the
-- page cache: the engines' results (22 KB each, 44 MB for 2000 plans) would otherwise be
-- written back by the kernel during the next contender's time.
local ROUNDS = math.tointeger(tonumber(os.getenv("BENCH_ROUNDS") or "5"))
local results, contenders = {}, {}
local function measure(name, fn) contenders[#contenders + 1] = { name = name, fn = fn } end

local function cmd(argv)
  return function()
    local r = sys.run(argv, { input = input, timeout = 3600 })
    return r.code == 0, r.stderr:sub(1, 300)
  end
end

measure("bare posix_spawn loop", cmd({ floor_bin, tostring(SLOTS), ras }))
-- GNU parallel buffers each job's output in two temporary files, made and
-- deleted per job. On the benchmark's disk that is 4,000 files made and
-- deleted in seconds, and on ext4 without a journal (as on these machines)
-- every file made in the next minutes skips past the recently freed inodes
-- one by one: the contender after parallel would pay for its temporary
-- files. They go to a RAM folder (as /tmp is on Debian 13), which is also
-- the faster place for parallel itself.
local par_tmp = fs.isdir("/dev/shm") and fs.tempdir("rasrun-bench-parallel", "/dev/shm") or nil
local par = { "parallel", "--will-cite", "-j", tostring(SLOTS), "--colsep", " " }
if par_tmp then
  par[#par + 1] = "--tmpdir"
  par[#par + 1] = par_tmp
end
par[#par + 1] = "cd {1} && exec " .. ras .. " {2} {3}"
measure("GNU parallel -j2", cmd(par))
measure("xargs -P2", cmd({ "xargs", "-P", tostring(SLOTS), "-L", "1", "sh", "-c",
  'cd "$0" && exec ' .. ras .. ' "$1" "$2"' }))
-- rasrun runs as its own process too, as a user starts it (opening the
-- projects is part of its time): tests/bench/dispatch_run.lua. It reports
-- its controller's CPU, which the table shows apart from its engines'.
local self_exe = assert(fs.readlink("/proc/self/exe"))
local function rasrun_run(mode)
  return function()
    local r = sys.run({ self_exe, "run", "tests/bench/dispatch_run.lua", root, mode, tostring(SLOTS) },
      { timeout = 3600 })
    local own = tonumber(r.stdout:match("own cpu ([%d.]+)"))
    return r.code == 0, (r.stdout .. r.stderr):sub(1, 300), own
  end
end
measure("rasrun (stage, run, check)", rasrun_run("check"))
-- Not a contender: what the checks cost, for whoever works on the scheduler.
measure("rasrun, checks off", rasrun_run("nocheck"))

for round = 1, ROUNDS do
  local first, last, step = 1, #contenders, 1
  if round % 2 == 0 then first, last, step = #contenders, 1, -1 end
  for i = first, last, step do
    local c = contenders[i]
    sys.run({ "sync" }, { timeout = 600 })
    local secs, ok, detail, use = timed(c.fn)
    io.stderr:write(("  round %d %-28s %7.2f s %s\n"):format(round, c.name, secs,
      ok and "" or ("FAILED: " .. tostring(detail))))
    local r = results[i] or { name = c.name, secs = math.huge, ok = true, rounds = {} }
    if secs < r.secs then r.secs, r.use = secs, use end
    r.rounds[round] = secs
    r.ok = r.ok and ok
    results[i] = r
  end
end

local by = {}
for _, r in ipairs(results) do by[r.name] = r end
local ours = by["rasrun (stage, run, check)"]
print(("\ndispatch overhead: %d plans, engine returns at once, %d local slots, best of %d rounds")
  :format(N, SLOTS, ROUNDS))
print(("%-28s %9s %9s %14s   %s"):format("", "wall s", "ms/plan", "rasrun/this",
  "CPU ms/plan: own, children, idle"))
local function per_plan(x) return x / N * 1000 end
for _, r in ipairs(results) do
  local u = r.use and ("%6.2f %6.2f %6.2f"):format(per_plan(r.use.own), per_plan(r.use.kids),
    per_plan(r.use.idle)) or ""
  print(("%-28s %9.2f %9.2f %13.2fx   %s%s"):format(r.name, r.secs, per_plan(r.secs), ours.secs / r.secs,
    u, r.ok and "" or "  (failed)"))
end
-- The machine's speed can move by more than the margins measured here within
-- one run (the floor's rounds show it). A contender's best time may come from
-- a fast moment that rasrun's best did not share: the verdict takes instead
-- the ratio of each round, where the two ran back to back at the same speed
-- of the machine, and the median of those (the best times' ratio is shown
-- beside it).
local function median(list)
  local t = table.move(list, 1, #list, 1, {})
  table.sort(t)
  local m = #t // 2
  return #t % 2 == 1 and t[m + 1] or (t[m] + t[m + 1]) / 2
end
local function paired(name)
  local r = {}
  for round = 1, ROUNDS do r[round] = ours.rounds[round] / by[name].rounds[round] end
  return r
end
local function verdict(name, limit, word)
  local ratio = median(paired(name))
  return ("%s %.2fx %s (%s %s; best times' ratio %.2fx)"):format(name, ratio,
    ratio <= limit and "ok" or "MISSED", word, limit, ours.secs / by[name].secs)
end
local function rounds_of(name)
  local t = {}
  for round, r in ipairs(paired(name)) do t[round] = ("%.2f"):format(r) end
  return table.concat(t, " ")
end
local floor_secs = {}
for round = 1, ROUNDS do floor_secs[round] = ("%.2f"):format(by["bare posix_spawn loop"].rounds[round]) end
print(("rasrun/xargs by round: %s; rasrun/floor: %s (floor s: %s)"):format(rounds_of("xargs -P2"),
  rounds_of("bare posix_spawn loop"), table.concat(floor_secs, " ")))
print("targets (median of the rounds' ratios): " .. table.concat({
  verdict("xargs -P2", 1.0, "faster than, <="),
  verdict("GNU parallel -j2", 1.0, "faster than, <="),
  verdict("bare posix_spawn loop", 2.0, "within"),
}, "; "))
fs.rmtree(root)
if par_tmp then fs.rmtree(par_tmp) end
