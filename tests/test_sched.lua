-- The scheduler with local workers and the simulated engine's failure modes.
local lu = require "luaunit"
local rasrun = require "rasrun"
local fs = require "rasrun.fs"
local sys = require "rasrun.sys"
local json = require "rasrun.json"
local H = require "helpers"
local runtime = require "rasrun.runtime"

TestSched = {}

function TestSched:tearDown() H.cleanup() end

-- Processes running a simulated engine binary.
local function engines_alive() return H.processes_under(H.sim()) end

local function pool_of(...)
  return rasrun.pool { ... }
end

local function project(plans, opts)
  local d = H.tmpdir("sched")
  return rasrun.project.open(H.project(d, plans, opts)), d
end

local function run(pool, opts)
  opts.run_dir = opts.run_dir or (opts.project.dir .. "/run")
  return H.run(pool, opts)
end

function TestSched:test_plans_run_in_parallel_and_results_come_back()
  local workdir = H.tmpdir("work")
  local prj = project({ { title = "a", seconds = 0.6 }, { title = "b", seconds = 0.6 },
                        { title = "c", seconds = 0.6 }, { title = "d", seconds = 0.6 } })
  local r = run(pool_of(H.local_worker("here", 2, { workdir = workdir })), { project = prj })
  lu.assertTrue(r.ok)
  lu.assertEquals(r.counts.ok, 4)
  lu.assertEquals(H.max_overlap(r.results), 2)
  for _, res in ipairs(r.results) do
    lu.assertEquals(res.status, "ok")
    lu.assertEquals(res.worker, "here")
    lu.assertEquals(res.attempts, 1)
    -- counts and codes are integers: a recipe prints 1, not 1.0
    lu.assertEquals({ math.type(res.attempts), math.type(res.history[1].attempt),
                      math.type(res.history[1].exit_code) }, { "integer", "integer", "integer" })
    lu.assertEquals(res.result, prj.dir .. "/Sample.p" .. res.plan .. ".hdf")
    lu.assertTrue(rasrun.checks.standard {}(res.result).ok)
    lu.assertStrContains(H.read(res.history[1].log), "Finished Unsteady Flow Simulation")
    lu.assertEquals(#res.checks, 4)
  end
  -- nothing left in the work folder, nothing temporary in the project
  lu.assertEquals(fs.list(workdir), {})
  for _, n in ipairs(fs.list(prj.dir)) do lu.assertNil(n:match("rasrun%-"), n) end
  -- reports and journal
  local doc = json.decode(H.read(r.run_dir .. "/run.json"))
  lu.assertEquals(#doc.plans, 4)
  lu.assertEquals(doc.plans[1].history[1].worker, "here")
  lu.assertStrContains(H.read(r.run_dir .. "/report.html"), "<svg")
  local evs = {}
  for _, e in ipairs(H.journal(r.run_dir)) do evs[e.ev] = (evs[e.ev] or 0) + 1 end
  lu.assertEquals(evs.run_start, 1)
  lu.assertEquals(evs.launched, 4)
  lu.assertEquals(evs.done, 4)
  lu.assertEquals(evs.run_end, 1)
end

-- pool:run pauses Lua's collector while it writes the reports: it leaves it
-- as it found it.
function TestSched:test_the_collector_is_left_as_pool_run_found_it()
  local prj = project({ { title = "a", seconds = 0 } })
  local pool = pool_of(H.local_worker("here", 1, { workdir = H.tmpdir("work") }))
  run(pool, { project = prj, force = true })
  lu.assertTrue(collectgarbage("isrunning"))
  collectgarbage("stop")
  local ok = pcall(run, pool, { project = prj, force = true })
  local running = collectgarbage("isrunning")
  collectgarbage("restart")
  lu.assertTrue(ok)
  lu.assertFalse(running)
end

-- The loop thread asks for a short scheduler slice while a run goes on (so
-- that it gets a core at once when an engine ends); what it starts gets the
-- default slice, and the thread gets its own back after the run.
function TestSched:test_the_loop_asks_for_a_short_slice_only_while_it_runs()
  local function slice(pid)
    local t = fs.read(("/proc/%s/sched"):format(pid))
    return t and tonumber(t:match("se%.slice%s*:%s*(%d+)"))
  end
  local before = slice("self")
  if not before then lu.skip("this kernel shows no /proc/PID/sched") end
  local during, child
  local prj = project({ { title = "a", seconds = 0.2 } })
  run(pool_of(H.local_worker("here", 1, { workdir = H.tmpdir("work") })), { project = prj,
    on_event = function(ev)
      if ev.type == "start" and not during then
        during = slice("self")
        child = tonumber(sys.run({ "sh", "-c", "grep se.slice /proc/$$/sched" }).stdout:match("(%d+)"))
      end
    end })
  local major, minor = sys.run({ "uname", "-r" }).stdout:match("^(%d+)%.(%d+)")
  if tonumber(major) * 100 + tonumber(minor) < 612 then
    lu.skip("this kernel has one slice for all (custom slices came with Linux 6.12)")
  end
  -- at a raised priority (nice < 0, field 19 of /proc/self/stat) it is left as it is
  local nice = tonumber(fs.read("/proc/self/stat"):match("%) " .. ("%S+ "):rep(16) .. "(%-?%d+)"))
  lu.assertEquals(during, nice < 0 and before or 100000)
  lu.assertNotEquals(child, 100000)
  lu.assertEquals(slice("self"), before)
end

function TestSched:test_four_slots_run_four_engines_at_once()
  local prj = project({ { title = "a", seconds = 1 }, { title = "b", seconds = 1 },
                        { title = "c", seconds = 1 }, { title = "d", seconds = 1 } })
  local t0 = sys.monotonic()
  local r = run(pool_of(H.local_worker("wide", 4)), { project = prj })
  lu.assertTrue(r.ok)
  lu.assertEquals(H.max_overlap(r.results), 4)
  lu.assertTrue(sys.monotonic() - t0 < 3.5, "four 1 s plans on four slots took too long")
end

function TestSched:test_crash_is_retried_on_another_worker()
  local prj = project({ { title = "crashes on a", mode = "crash@a", seconds = 0.1 } })
  local r = run(pool_of(H.local_worker("a", 1), H.local_worker("b", 1)),
    { project = prj, retries = 1 })
  local res = H.result(r, "01")
  lu.assertEquals(res.status, "ok")
  lu.assertEquals(res.attempts, 2)
  lu.assertEquals(res.history[1].worker, "a")
  lu.assertEquals(res.history[1].status, "failed")
  lu.assertStrContains(res.history[1].reason, "the engine exited with code 174")
  -- with what the engine said last, which is why
  lu.assertStrContains(res.history[1].reason, "(its log ends: forrtl: severe (174): SIGSEGV")
  lu.assertEquals(res.history[2].worker, "b")
  lu.assertEquals(res.worker, "b")
end

function TestSched:test_retries_run_out()
  local prj = project({ { title = "always crashes", mode = "crash", seconds = 0.05 } })
  local r = run(pool_of(H.local_worker("a", 1)), { project = prj, retries = 2 })
  local res = H.result(r, "01")
  lu.assertEquals(res.status, "failed")
  lu.assertEquals(res.attempts, 3)
  lu.assertFalse(r.ok)
  -- the failed attempts' outputs are kept for inspection, the project has no result
  lu.assertFalse(fs.exists(prj.dir .. "/Sample.p01.hdf"))
  lu.assertTrue(fs.isfile(r.run_dir .. "/attempts/Sample_p01-a1/Sample.p01.hdf"))
end

-- A full disk (a 700 KB tmpfs holding the project and the work folders,
-- filled up after a first run): every plan fails naming the disk, the
-- results of the first run stay as they were, the journal's failure is said
-- once, and the run still ends with its summary and status 1 (the reports,
-- which cannot be written, say so instead of stopping it).
function TestSched:test_a_full_disk_fails_the_plans_and_keeps_every_result()
  H.need_root()
  local disk = H.tmpdir("full")
  lu.assertEquals(sys.run({ "mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", disk }).code, 0)
  local ok, err = pcall(function()
    local plans = {}
    for i = 1, 12 do plans[i] = { title = "p" .. i, seconds = 0 } end
    local prj = H.project(disk .. "/prj", plans)
    local recipe = H.tmpdir("recipe") .. "/full.lua"
    assert(fs.write(recipe, table.concat({
      'local rasrun = require "rasrun"',
      ("local prj = assert(rasrun.project.open(%q))"):format(prj),
      ('local pool = rasrun.pool { rasrun.worker { type = "local", name = "here", slots = 2, workdir = %q,')
        :format(disk .. "/work"),
      '  engine = { kind = "linux", home = rasrun.sim.home("linux") } } }',
      'local run = pool:run { project = prj, progress = "plain", force = true }',
      "return run.ok and 0 or 1", "" }, "\n")))
    local env = { FAKE_RAS_SECONDS = "0" }
    local r = H.rasrun({ "run", recipe }, { env = env })
    lu.assertEquals(r.code, 0, r.stderr)
    local function sums() return sys.run({ "sh", "-c", "cd '" .. disk .. "/prj' && sha256sum Sample.p*.hdf" }).stdout end
    local before = sums()
    sys.run({ "dd", "if=/dev/zero", "of=" .. disk .. "/filler", "bs=4k" }) -- until the disk is full
    r = H.rasrun({ "run", recipe }, { env = env })
    lu.assertEquals(r.code, 1, r.stderr)
    lu.assertStrContains(r.stderr, "12 plans: 0 ok, 12 failed")
    lu.assertStrContains(r.stderr, "No space left on device")
    lu.assertEquals(select(2, r.stderr:gsub("cannot write the journal", "")), 1, r.stderr)
    lu.assertStrContains(r.stderr, "report not written: cannot write " .. disk)
    lu.assertEquals(sums(), before)
  end)
  sys.run({ "umount", disk })
  assert(ok, err)
end

-- A helper the engine left running in its process group ends with it.
function TestSched:test_a_helper_left_in_the_engines_group_ends_with_it()
  local home = H.engine_leaving_a_helper(H.tmpdir("engine"))
  local prj = project({ { title = "a", seconds = 0.1 } })
  local r = run(pool_of(H.local_worker("here", 1, { engine = { kind = "linux", home = home } })),
                { project = prj })
  lu.assertEquals(r.results[1].status, "ok", tostring(r.results[1].reason))
  H.wait_for(function() return #H.processes_under(home) == 0 end, 5, "the helper to end")
end

-- A daemon the engine started (out of its tree and process group) but that
-- works in the attempt's folder is stopped with a timed-out attempt, and
-- with the run for one whose engine ended.
function TestSched:test_a_daemon_working_in_the_attempts_folder_is_stopped()
  local home = H.engine_leaving_a_helper(H.tmpdir("engine"), true)
  local prj = project({ { title = "quick", seconds = 0.2 }, { title = "hangs", mode = "hang" } })
  local r = run(pool_of(H.local_worker("here", 2, { engine = { kind = "linux", home = home } })),
                { project = prj, timeout = 1.5 })
  lu.assertEquals(H.result(r, "01").status, "ok")
  lu.assertStrContains(H.result(r, "02").reason, "timed out after 1.5 s") -- not "2 s"
  H.wait_for(function() return #H.processes_under(home) == 0 end, 5, "the daemons to end")
end

function TestSched:test_timeout_kills_the_whole_process_tree()
  local prj = project({ { title = "hangs", mode = "hang" } })
  local t0, cpu0 = sys.monotonic(), os.clock()
  local r = run(pool_of(H.local_worker("a", 1, { kill_grace = 1.5 })), { project = prj, timeout = 1 })
  local res = H.result(r, "01")
  lu.assertEquals(res.status, "failed")
  lu.assertStrContains(res.reason, "timed out after 1 s")
  local secs = sys.monotonic() - t0
  lu.assertTrue(secs >= 2.4 and secs < 10, ("%.2f s"):format(secs)) -- the timeout, then the grace
  -- waiting out the grace the engine ignores SIGTERM for costs no CPU
  lu.assertTrue(os.clock() - cpu0 < 0.5, ("%.2f s of CPU"):format(os.clock() - cpu0))
  -- the hung engine ignores SIGTERM and left a helper in its own session:
  -- both are gone
  H.wait_for(function() return #engines_alive() == 0 end, 5, "the hung engines to be gone")
  -- what it had written is kept with the run, as a failed attempt's files
  -- are; the project has no result
  lu.assertEquals(fs.list(r.run_dir .. "/attempts/Sample_p01-a1"), { "Sample.p01.hdf" })
  lu.assertFalse(fs.exists(prj.dir .. "/Sample.p01.hdf"))
end

-- A plan that only a down worker could run fails after down_grace, with
-- that worker's reason, while the other workers run the rest; the run ends.
function TestSched:test_a_plan_only_a_down_worker_can_run_fails_after_the_grace()
  local d = H.tmpdir("down")
  H.project(d, { { title = "either", seconds = 0.05 }, { title = "windows only", seconds = 0.05 } })
  assert(os.remove(d .. "/Sample.p02.tmp.hdf")) -- the linux engine cannot run 02 now
  assert(fs.write(d .. "/down.lua", ([[
local rasrun = require "rasrun"
local pool = rasrun.pool {
  rasrun.worker { type = "local", name = "up", slots = 1, engine = { kind = "linux", home = %q } },
  rasrun.worker { type = "local", name = "down", slots = 1, workdir = "/proc/none/work",
                  engine = { kind = "windows", home = %q } },
}
local run = pool:run { project = arg[1], down_grace = 1, progress = false }
for _, r in ipairs(run.results) do print(r.plan, r.status, r.reason) end
]]):format(H.sim("linux"), H.sim("windows"))))
  local t0 = sys.monotonic()
  local r = sys.run({ H.bin, "run", d .. "/down.lua", d .. "/Sample.prj" }, { timeout = 30 })
  lu.assertTrue(sys.monotonic() - t0 < 20, "the run did not end")
  lu.assertEquals(r.code, 1, r.stderr)
  lu.assertStrContains(r.stdout, "01\tok")
  lu.assertStrContains(r.stdout, "02\tfailed\tno worker available: down (")
  lu.assertStrContains(r.stdout, "cannot create folder /proc/none")
end

-- A helper whose parent ended on SIGTERM is no longer under the engine when
-- the grace runs out (it belongs to init by then), but it was the
-- attempt's: it is killed too.
function TestSched:test_a_timeout_kills_a_helper_left_behind_during_the_grace()
  local home = H.tmpdir("engine")
  assert(fs.mkdirs(home .. "/bin"))
  local pidfile = home .. "/helper.pid"
  -- the engine outlives SIGTERM; its child does not, but first starts a
  -- helper in a session of its own that ignores SIGTERM
  assert(fs.write(home .. "/bin/RasUnsteady", ([[#!/bin/sh
trap 'echo engine: SIGTERM ignored' TERM
sh -c 'setsid sh -c "trap \"\" TERM; echo \$\$ > %s; exec sleep 60" & sleep 60' &
while :; do sleep 0.1; done
]]):format(pidfile)))
  lu.assertEquals(sys.run({ "chmod", "755", home .. "/bin/RasUnsteady" }).code, 0)
  local prj = project({ { title = "hangs", seconds = 0 } })
  local w = H.local_worker("a", 1, { kill_grace = 1, engine = { kind = "linux", home = home } })
  local r = run(pool_of(w), { project = prj, timeout = 1 })
  lu.assertStrContains(H.result(r, "01").reason, "timed out after 1 s")
  local helper = math.tointeger(tonumber(H.read(pidfile)))
  lu.assertNotNil(helper)
  local gone, err = pcall(H.wait_for, function() return not sys.alive(helper) end, 5, "the helper to be gone")
  if not gone then sys.kill(helper, "KILL") error(err, 0) end
end

-- Slow recipe checks do not hold up the rest of the loop: a timeout is
-- enforced on time while finished plans' checks are still queued.
function TestSched:test_slow_checks_do_not_delay_a_timeout()
  local plans = { { title = "hangs", mode = "hang" } }
  for i = 1, 6 do plans[#plans + 1] = { title = "quick " .. i, seconds = 0.05 } end
  local prj = project(plans)
  local r = run(pool_of(H.local_worker("a", 7, { kill_grace = 0 })), { project = prj, timeout = 1,
    check = function() sys.sleep(0.4) return true end })
  lu.assertEquals(r.counts.ok, 6)
  local hung = H.result(r, "01")
  lu.assertStrContains(hung.reason, "timed out after 1 s")
  -- the six checks take 2.4 s in all; the engine is stopped at 1 s, give or
  -- take the one or two checks that run meanwhile
  local h = hung.history[1]
  local stopped = h.ended - (h.launched or h.started)
  lu.assertTrue(stopped < 2.2, ("stopped after %.2f s"):format(stopped))
end

-- A recipe that reaps an engine itself (sys.wait on a child of the
-- controller) takes its exit status: the attempt fails and says so; the loop
-- does not wait on it forever.
function TestSched:test_an_engine_reaped_by_the_recipe_fails_its_attempt()
  local prj = project({ { title = "reaped elsewhere", seconds = 0.3 } })
  local reaped
  local r = run(pool_of(H.local_worker("a", 1)), { project = prj, on_event = function(ev)
    if ev.type == "launched" and not reaped then
      for _, pid in ipairs(sys.descendants(sys.pid())) do
        if sys.wait(pid, 10) then reaped = pid end
      end
    end
  end })
  lu.assertNotNil(reaped)
  local res = H.result(r, "01")
  lu.assertEquals(res.status, "failed")
  lu.assertStrContains(res.reason, "its exit status was taken by another wait")
end

-- A plan's "done" event names the attempt that ended it, its worker and
-- host, and its time ends when that attempt did.
function TestSched:test_done_events_name_the_worker_and_attempt()
  local prj = project({ { title = "a", seconds = 0.1 }, { title = "b", seconds = 0.1 } })
  local done = {}
  local r = run(pool_of(H.local_worker("here", 1)), { project = prj, on_event = function(ev)
    if ev.type == "done" then done[ev.plan] = ev end
  end })
  lu.assertTrue(r.ok)
  for _, n in ipairs({ "01", "02" }) do
    local ev = done[n]
    lu.assertEquals({ ev.worker, ev.host, ev.attempt, ev.attempts, ev.status }, { "here", r.results[1].host, 1, 1, "ok" })
    lu.assertStrContains(ev.log, "Sample_p" .. n .. "-a1.log")
    lu.assertTrue(ev.elapsed >= 0.1 and ev.elapsed < ev.t - ev.started + 1e-6, ev.elapsed)
  end
end

-- Logs are named after the plan's key with '/' and ' ' as '_': projects
-- "Dam Break" and "Dam_Break" in one run keep their logs apart.
function TestSched:test_similar_project_names_keep_their_logs_apart()
  local one = rasrun.project.open(H.project(H.tmpdir("sched"), { { title = "a", seconds = 0.05 } },
    { name = "Dam Break" }))
  local two = rasrun.project.open(H.project(H.tmpdir("sched"), { { title = "b", seconds = 0.05 } },
    { name = "Dam_Break" }))
  local run_dir = H.tmpdir("sched") .. "/run"
  local r = H.run(pool_of(H.local_worker("a", 2)), { projects = { one, two }, run_dir = run_dir })
  lu.assertTrue(r.ok)
  local logs = fs.glob(run_dir .. "/logs/*.log")
  lu.assertEquals(#logs, 2)
  lu.assertNotEquals(r.results[1].history[1].log, r.results[2].history[1].log)
end

function TestSched:test_unstable_and_volume_errors_fail_with_the_reason()
  local prj = project({ { title = "unstable", mode = "unstable", seconds = 0.05 },
                        { title = "volume", mode = "volume", seconds = 0.05 },
                        { title = "fine", seconds = 0.05 } })
  local r = run(pool_of(H.local_worker("a", 2)), { project = prj })
  lu.assertEquals(H.result(r, "01").status, "failed")
  lu.assertStrContains(H.result(r, "01").reason, 'Solution: "Unsteady Went Unstable"')
  lu.assertEquals(H.result(r, "02").status, "failed")
  lu.assertStrContains(H.result(r, "02").reason, "volume accounting error 5.3% exceeds 1%")
  lu.assertEquals(H.result(r, "03").status, "ok")
  lu.assertFalse(fs.exists(prj.dir .. "/Sample.p01.hdf"))
  lu.assertTrue(fs.exists(prj.dir .. "/Sample.p03.hdf"))
end

function TestSched:test_exit_zero_is_not_success()
  local prj = project({ { title = "silent", mode = "silent", seconds = 0.05 },
                        { title = "noresult", mode = "noresult", seconds = 0.05 } })
  local r = run(pool_of(H.local_worker("a", 2)), { project = prj })
  lu.assertStrContains(H.result(r, "01").reason, "ERROR: Unsteady flow computations did not converge")
  lu.assertStrContains(H.result(r, "02").reason, "plan data but no results: the engine wrote none")
  lu.assertEquals(H.result(r, "01").history[1].exit_code, 0)
end

function TestSched:test_a_stale_result_is_never_taken_for_a_new_one()
  local windows = { type = "local", name = "win", slots = 1, kill_grace = 0.5,
                    engine = { kind = "windows", home = H.sim("windows") } }
  local prj = project({ { title = "ok first", seconds = 0.05 } })
  lu.assertTrue(run(pool_of(rasrun.worker(windows)), { project = prj }).ok)
  local old = H.read(prj.dir .. "/Sample.p01.hdf")
  -- now the engine writes nothing: the earlier result must not pass for this run
  local text = H.read(prj.dir .. "/Sample.p01"):gsub("Fake RAS Mode=ok", "Fake RAS Mode=noresult")
  fs.write(prj.dir .. "/Sample.p01", text)
  local r = run(pool_of(rasrun.worker(windows)), { project = prj, force = true, run_dir = prj.dir .. "/run2" })
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, "did not write Sample.p01.hdf")
  lu.assertEquals(H.read(prj.dir .. "/Sample.p01.hdf"), old) -- the old result is kept as it was
  -- Linux: a .tmp.hdf that already holds results from an earlier run is stale
  local prj2, d2 = project({ { title = "stale tmp", mode = "noresult", seconds = 0.05 } })
  local pre = sys.run({ H.sim() .. "/bin/RasUnsteady", "Sample.p01.tmp.hdf", "x01" },
    { cwd = d2, env = { FAKE_RAS_MODE = "ok", FAKE_RAS_TIME_SHIFT = "-7200" } })
  lu.assertEquals(pre.code, 0, pre.stderr)
  fs.touch(d2 .. "/Sample.p01.tmp.hdf", sys.now() - 3600)
  r = run(pool_of(H.local_worker("a", 1)), { project = prj2 })
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, "stale")
end

-- An engine that exits 0 and leaves the staged .tmp.hdf as it was copied in
-- made no result: the attempt fails even with the checks off.
function TestSched:test_a_result_file_left_as_staged_in_is_no_result()
  local home = H.tmpdir("engine")
  assert(fs.mkdirs(home .. "/bin"))
  for _, prog in ipairs({ "RasUnsteady", "RasGeomPreprocess" }) do
    assert(fs.write(home .. "/bin/" .. prog, "#!/bin/sh\nexit 0\n"))
    lu.assertEquals(sys.run({ "chmod", "755", home .. "/bin/" .. prog }).code, 0)
  end
  local prj = project({ { title = "does nothing", seconds = 0 } })
  local w = H.local_worker("a", 1, { engine = { kind = "linux", home = home } })
  local r = run(pool_of(w), { project = prj, check = false })
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, "did not write Sample.p01.tmp.hdf")
  lu.assertFalse(fs.exists(prj.dir .. "/Sample.p01.hdf"))
end

-- With the checks off, a result must still hold results: the Linux engine
-- that opens its .tmp.hdf and exits 0 without writing any made none, and the
-- project's earlier result stays.
function TestSched:test_with_the_checks_off_a_result_without_results_is_no_result()
  local prj = project({ { title = "none", mode = "noresult", seconds = 0.05 } })
  local old = "an earlier run's result"
  assert(fs.write(prj.dir .. "/Sample.p01.hdf", old))
  local r = run(pool_of(H.local_worker("a", 1)), { project = prj, check = false, force = true })
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, "Sample.p01.hdf: the file holds plan data but no results: the engine wrote none")
  lu.assertEquals(H.read(prj.dir .. "/Sample.p01.hdf"), old)
  -- nor a stale one: a .tmp.hdf that holds an earlier run's results, which
  -- the engine left as they were
  prj = project({ { title = "ran before", seconds = 0.05 } })
  r = run(pool_of(H.local_worker("a", 1)), { project = prj, check = false, force = true })
  lu.assertEquals(r.results[1].status, "ok", tostring(r.results[1].reason))
  assert(fs.write(prj.dir .. "/Sample.p01.tmp.hdf", H.read(prj.dir .. "/Sample.p01.hdf")))
  sys.sleep(3.5) -- (past the freshness slack, 2 s, and the window's whole seconds)
  sys.setenv("FAKE_RAS_MODE", "noresult") -- (the copy's own mode is ok)
  local ok, e = pcall(run, pool_of(H.local_worker("a", 1)), { project = prj, check = false, force = true,
                                                               run_dir = prj.dir .. "/run2" })
  sys.setenv("FAKE_RAS_MODE", nil)
  r = assert(ok and e, e)
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, "stale: Run Time Window")
end

-- A journal the disk cannot sync is said so, naming it, once.
function TestSched:test_a_journal_that_cannot_be_synced_is_reported()
  local recipe = H.tmpdir("sched") .. "/journal.lua"
  assert(fs.write(recipe, [[
local j = assert(require("rasrun.journal").open("/dev/null"))
for i = 1, 3 do j:write { ev = "x", i = i } end
j:close()
]]))
  local r = H.rasrun({ "run", recipe })
  local _, n = r.stderr:gsub("cannot sync the journal /dev/null to disk", "")
  lu.assertEquals(n, 1, r.stderr)
end

-- A line the disk took only part of (here a file size limit stands for a
-- full disk) is taken back: the next line that fits is written whole and
-- read back, and no broken line is left.
function TestSched:test_a_journal_line_cut_short_by_a_full_disk_is_taken_back()
  local d = H.tmpdir("sched")
  assert(fs.write(d .. "/fill.lua", [[
local jr = require("rasrun.journal")
local j = assert(jr.open(arg[1]))
local failed
for i = 1, 200 do
  if not j:write { ev = "fill", i = i, pad = string.rep("x", 100) } then failed = i break end
end
local short = j:write { ev = "short" }
j:close()
local entries, broken = jr.read(arg[1])
print(failed, short and "written" or "lost", #entries, broken, entries[#entries].ev)
]]))
  -- 4 blocks of 512 bytes; SIGXFSZ ignored, so that a write past it fails
  local r = sys.run({ "sh", "-c", "trap '' XFSZ; ulimit -f 4; exec \"$0\" run \"$1\" \"$2\"",
                      H.bin, d .. "/fill.lua", d .. "/journal.jsonl" })
  lu.assertEquals(r.code, 0, r.stderr)
  local failed, short, n, broken, last = r.stdout:match("^(%d+)\t(%a+)\t(%d+)\t(%d+)\t(%a+)")
  lu.assertNotNil(failed, r.stdout)
  lu.assertEquals({ short, tonumber(n), tonumber(broken), last }, { "written", tonumber(failed), 0, "short" })
end

-- A recipe's check function gets the plan number, also when rasrun asks it
-- whether an earlier result is still good; one that raises there does not
-- stop the run: the plan runs again.
function TestSched:test_a_check_function_gets_the_plan_number()
  local prj = project({ { title = "a", seconds = 0.05 } })
  local pool = pool_of(H.local_worker("a", 1))
  local got = {}
  local function check(path, ctx, plan)
    got[#got + 1] = plan
    return true
  end
  lu.assertTrue(run(pool, { project = prj, check = check }).ok)
  local r = run(pool, { project = prj, check = check, run_dir = prj.dir .. "/run2" })
  lu.assertEquals(r.results[1].status, "skipped")
  lu.assertEquals(got, { "01", "01" })
  local raised = 0
  r = run(pool, { project = prj, run_dir = prj.dir .. "/run3", check = function(_, _, plan)
    raised = raised + 1
    if raised == 1 then error("baseline " .. plan .. " not found") end
    return true
  end })
  lu.assertEquals(r.results[1].status, "ok")
  lu.assertEquals(raised, 2)
end

-- A plan's checks are its last attempt's: none when that attempt ended
-- before a result was checked, not the failed checks of an earlier one on
-- another worker.
function TestSched:test_a_plans_checks_are_its_last_attempts()
  local prj = project({ { title = "a", seconds = 0.05, mode = "hang@w2" } })
  local pool = pool_of(H.local_worker("w1", 1), H.local_worker("w2", 1, { tier = 1 }))
  local r = run(pool, { project = prj, retries = 1, timeout = 1, check = function() return false, "no good" end })
  local res = r.results[1]
  lu.assertEquals(res.status, "failed")
  lu.assertEquals(res.worker, "w2")
  lu.assertStrContains(res.reason, "timed out")
  lu.assertEquals(res.checks or {}, {})
  local doc = json.decode(H.read(prj.dir .. "/run/run.json"))
  lu.assertEquals(doc.plans[1].checks, {})
  -- nor when the last attempt's check raised an error
  prj = project({ { title = "a", seconds = 0.05 } })
  r = run(pool, { project = prj, retries = 1, check = function(_, ctx)
    if ctx.worker == "w2" then error({ message = "no licence for the checker" }) end
    return false, "no good"
  end })
  res = r.results[1]
  lu.assertEquals(res.worker, "w2")
  -- an error that is not a string is told by its message (it read "(null)")
  lu.assertStrContains(res.reason, "the check raised an error: no licence for the checker")
  lu.assertEquals(res.checks or {}, {})
  -- a check that returns nothing is told so
  prj = project({ { title = "a", seconds = 0.05 } })
  r = run(pool, { project = prj, check = function() end })
  lu.assertEquals(r.results[1].reason, "the recipe's check returned nothing (return true, or false and why)")
end

function TestSched:test_dependencies_are_respected()
  local prj = project({ { title = "first", seconds = 0.5 }, { title = "second", seconds = 0.1 },
                        { title = "free", seconds = 0.1 } })
  local r = run(pool_of(H.local_worker("a", 3)), { project = prj, plans = { "02", "01", "03" },
                                                  after = { ["02"] = { "01" } } })
  lu.assertTrue(r.ok)
  local first, second = H.result(r, "01").history[1], H.result(r, "02").history[1]
  lu.assertTrue(second.started >= first.ended, "02 started before 01 ended")
  -- results come back in the recipe's order
  lu.assertEquals({ r.results[1].plan, r.results[2].plan, r.results[3].plan }, { "02", "01", "03" })
  -- a failed dependency fails what waits for it, with the reason
  local prj2 = project({ { title = "crash", mode = "crash", seconds = 0.05 }, { title = "after", seconds = 0.05 } })
  r = run(pool_of(H.local_worker("a", 2)), { project = prj2, after = { ["02"] = "01" } })
  lu.assertEquals(H.result(r, "02").status, "failed")
  lu.assertStrContains(H.result(r, "02").reason, "not run: it waits for Sample/p01, which failed")
  lu.assertEquals(H.result(r, "02").attempts, 0)
  lu.assertErrorMsgContains("cycle", function()
    run(pool_of(H.local_worker("a", 2)), { project = prj2, after = { ["02"] = "01", ["01"] = "02" } })
  end)
  -- the message points into the recipe, not into rasrun, however long the cycle
  local ok, err = pcall(run, pool_of(H.local_worker("a", 2)), { project = prj,
    after = { ["01"] = "02", ["02"] = "03", ["03"] = "01" } })
  lu.assertFalse(ok)
  lu.assertNotStrContains(err, "pool.lua")
  lu.assertStrContains(err, "cycle: 01 -> 02 -> 03 -> 01")
  -- in a run of several projects, a plan number means that plan in each
  -- project that has both (prj2 has no 03), and a plan waits for the plans
  -- of its own project
  local prj3 = project({ { title = "good", seconds = 0.3 }, { title = "after", seconds = 0.05 },
                         { title = "third", seconds = 0.05 } })
  r = run(pool_of(H.local_worker("a", 3)), { projects = { prj2, prj3 }, after = { ["02"] = "01", ["01"] = "03" },
                                             run_dir = prj3.dir .. "/run" })
  local crashed, good = {}, {}
  for _, res in ipairs(r.results) do
    local t = res.project == prj2 and crashed or good
    t[res.plan] = res
  end
  lu.assertEquals(crashed["02"].status, "failed")
  lu.assertStrContains(crashed["02"].reason, "not run: it waits for")
  lu.assertEquals(crashed["02"].attempts, 0)
  lu.assertEquals({ good["01"].status, good["02"].status, good["03"].status }, { "ok", "ok", "ok" })
  lu.assertTrue(good["02"].history[1].started >= good["01"].history[1].ended, "waited for its own 01")
  lu.assertTrue(good["01"].history[1].started >= good["03"].history[1].ended, "01 waited for 03")
  -- a cycle is named from where it begins
  local ok, cerr = pcall(run, pool_of(H.local_worker("a", 2)), { project = prj3, plans = { "03", "01", "02" },
    after = { ["03"] = "02", ["02"] = "01", ["01"] = "02" } })
  lu.assertFalse(ok)
  lu.assertStrContains(cerr, "cycle: 02 -> 01 -> 02")
  -- across projects (both named Sample), by the plans' keys
  local other = "Sample/p02@" .. prj3.dir
  ok, cerr = pcall(run, pool_of(H.local_worker("a", 2)), { projects = { prj2, prj3 }, plans = { "02" },
    after = { ["Sample/p02"] = other, [other] = "Sample/p02" }, run_dir = prj3.dir .. "/run2" })
  lu.assertFalse(ok)
  lu.assertStrContains(cerr, "cycle: ")
  lu.assertStrContains(cerr, "Sample/p02 -> " .. other)
  -- a map where a list is wanted is said, not ignored
  ok, cerr = pcall(run, pool_of(H.local_worker("a", 2)), { project = prj3, after = { ["02"] = { x = "01" } } })
  lu.assertFalse(ok)
  lu.assertStrContains(cerr, 'after["02"] must list the plans it waits for')
end

-- From a recipe: a mistake in what it asks of pool:run is reported at the
-- recipe's line; a project file that is not there is said without a Lua
-- traceback, exit status 2.
function TestSched:test_pool_run_errors_point_at_the_recipe_line()
  local d = H.tmpdir("recipe")
  H.project(d, { { title = "a", seconds = 0.05 }, { title = "b", seconds = 0.05 } })
  local recipe = d .. "/cycle.lua"
  assert(fs.write(recipe, ([[
local rasrun = require "rasrun"
local pool = rasrun.pool { rasrun.worker { type = "local", name = "h", slots = 1,
  engine = { kind = "linux", home = %q } } }
pool:run { project = arg[1], after = { ["01"] = "02", ["02"] = "01" } }
]]):format(H.sim())))
  local r = sys.run({ H.bin, "run", recipe, d .. "/Sample.prj" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, recipe .. ":4: pool:run: the after dependencies form a cycle: 01 -> 02 -> 01")
  r = sys.run({ H.bin, "run", recipe, d .. "/Nope.prj" })
  lu.assertEquals(r.code, 2)
  lu.assertEquals(r.stderr, recipe .. ":4: pool:run: " .. d .. "/Nope.prj: no such project file\n")
  -- a filter that takes no plan is not an error, but is said
  assert(fs.write(recipe, ([[
local rasrun = require "rasrun"
local pool = rasrun.pool { rasrun.worker { type = "local", name = "h", slots = 1,
  engine = { kind = "linux", home = %q } } }
pool:run { project = arg[1], plans = function(p) return p.title == "none" end, progress = "plain" }
]]):format(H.sim())))
  r = sys.run({ H.bin, "run", recipe, d .. "/Sample.prj" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "warning: no plan to run: the plans filter took none of the 2 plans")
end

-- after as a list of pairs ({ {"03", "02"} }) makes plan 01 wait for both:
-- likely a mistake, said with the form that was likely meant.
function TestSched:test_after_as_a_list_of_pairs_is_said()
  local d = H.tmpdir("recipe")
  H.project(d, { { title = "a", seconds = 0 }, { title = "b", seconds = 0 }, { title = "c", seconds = 0 } })
  local recipe = d .. "/pairs.lua"
  assert(fs.write(recipe, ([[
local rasrun = require "rasrun"
local pool = rasrun.pool { rasrun.worker { type = "local", name = "h", slots = 3,
  engine = { kind = "linux", home = %q } } }
pool:run { project = arg[1], after = { { "03", "02" } }, progress = "plain" }
]]):format(H.sim())))
  local r = sys.run({ H.bin, "run", recipe, d .. "/Sample.prj" }, { env = { FAKE_RAS_SECONDS = "0" } })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, 'warning: after = { {"03", "02"}, ... } makes plan 01 wait for plans 03 and 02; '
    .. 'for plan 03 waiting for 02, write after = { ["03"] = { "02" } }')
end

-- Plan selection errors name the plan: one listed twice, a filter that
-- raises (here on a plan whose file is missing).
function TestSched:test_plan_selection_errors_name_the_plan()
  local prj = project({ { title = "a", seconds = 0.05 }, { title = "b", seconds = 0.05 } })
  local pool = pool_of(H.local_worker("a", 1))
  lu.assertErrorMsgContains('plan 01 is listed twice in plans (as "01" and "p1")', function()
    run(pool, { project = prj, plans = { "01", "02", "p1" } })
  end)
  lu.assertErrorMsgContains('Sample.prj: "1.5" is not a plan id', function() run(pool, { project = prj, plans = { "1.5" } }) end)
  local muncie = assert(rasrun.project.open(H.data .. "/HEC-RAS-AUTO/Example_Projects_6_6/Muncie.prj"))
  lu.assertErrorMsgContains("the plans filter raised an error on plan 01 of", function()
    run(pool, { project = muncie, run_dir = H.tmpdir("run"),
                plans = function(p) return p.title:find("2D") end })
  end)
end

-- A plan waits for another that cannot run anywhere: up to date, it stays
-- skipped (it is not failed for it); and a plan that waits for one the
-- interrupted run finished runs again when resumed, as it would have.
function TestSched:test_skipping_plans_that_wait_for_others()
  local prj, d = project({ { title = "first", seconds = 0.05 }, { title = "second", seconds = 0.05 } })
  local after = { ["02"] = "01" }
  lu.assertTrue(run(pool_of(H.local_worker("a", 2)), { project = prj, after = after }).ok)
  fs.touch(d .. "/Sample.p01", sys.now())
  assert(os.rename(d .. "/Sample.p01.tmp.hdf", d .. "/Sample.p01.tmp.hdf.away"))
  prj = assert(rasrun.project.open(d .. "/Sample.prj"))
  local r = run(pool_of(H.local_worker("a", 2)), { project = prj, after = after, run_dir = d .. "/run2" })
  lu.assertEquals({ H.result(r, "01").status, H.result(r, "02").status }, { "failed", "skipped" })
  assert(os.rename(d .. "/Sample.p01.tmp.hdf.away", d .. "/Sample.p01.tmp.hdf"))
  -- an interrupted run that had finished 01 (it ran) and not 02
  local resume_dir = d .. "/run3"
  assert(fs.mkdirs(resume_dir))
  assert(fs.write(resume_dir .. "/journal.jsonl", json.encode({ ev = "run_start", run_id = "run3" }) .. "\n"
    .. json.encode({ ev = "done", job = "Sample/p01", status = "ok", result = d .. "/Sample.p01.hdf",
                     attempts = 1 }) .. "\n"))
  fs.touch(d .. "/Sample.p01.hdf", sys.now())
  fs.touch(d .. "/Sample.p02.hdf", sys.now())
  prj = assert(rasrun.project.open(d .. "/Sample.prj"))
  r = run(pool_of(H.local_worker("a", 2)), { project = prj, after = after, resume = resume_dir })
  lu.assertEquals({ H.result(r, "01").status, H.result(r, "02").status }, { "ok", "ok" })
  lu.assertTrue(H.result(r, "01").resumed)
  lu.assertEquals(H.result(r, "02").attempts, 1)
end

-- The DSS files a flow's boundaries read go into the work folder, in their
-- subfolders (the simulated Ras.exe stops without them, as HEC-RAS does).
function TestSched:test_dss_files_in_subfolders_are_staged()
  local prj, d = project({ { title = "gauged", seconds = 0.05 } })
  H.dss_boundaries(d)
  prj = assert(rasrun.project.open(d .. "/Sample.prj"))
  local win = rasrun.worker { type = "local", name = "win", slots = 1, kill_grace = 0.5,
                              engine = { kind = "windows", home = H.sim("windows") } }
  local r = run(pool_of(win), { project = prj })
  lu.assertTrue(r.ok, r.results[1].reason)
  -- the one on a Windows drive is not staged, and the run says so
  fs.touch(d .. "/Sample.p01", sys.now() + 5)
  local out = H.rasrun({ "run", H.root .. "/tests/recipes/pool_run.lua", d, "1" },
                       { env = { RASRUN_TEST_ENGINE = "windows" } })
  lu.assertEquals(out.code, 0, out.stderr)
  lu.assertStrContains(out.stdout .. out.stderr, "warning: Sample/p01: Sample.u01 reads DSS files outside "
    .. "the project folder, which are not staged: the engine's host must have them there (C:\\shared\\far.dss)")
end

-- The Linux engine runs what Windows HEC-RAS put in the .pNN.tmp.hdf: a
-- flow file changed since is not in the run, and rasrun says so.
function TestSched:test_text_changed_after_the_linux_inputs_is_warned_about()
  local _, d = project({ { title = "a", seconds = 0.05 } })
  local out = H.rasrun({ "run", H.root .. "/tests/recipes/pool_run.lua", d, "1" })
  lu.assertEquals(out.code, 0, out.stderr)
  lu.assertNotStrContains(out.stdout .. out.stderr, "warning")
  fs.touch(d .. "/Sample.u01", sys.now() + 10)
  out = H.rasrun({ "run", H.root .. "/tests/recipes/pool_run.lua", d, "1" })
  lu.assertEquals(out.code, 0, out.stderr)
  lu.assertStrContains(out.stdout .. out.stderr,
    "warning: Sample/p01: Sample.u01 changed after Sample.p01.tmp.hdf was made")
end

-- Windows HEC-RAS writes the boundary file (.bNN) with CR LF line ends,
-- which the Linux engine does not read (the simulated RasUnsteady stops on
-- a CR, as the real one needs LF): the worker stages a copy without them,
-- and the project keeps its own file as it was.
function TestSched:test_a_boundary_file_with_windows_line_ends_runs_on_the_linux_engine()
  local _, d = project({ { title = "a", seconds = 0.05 }, { title = "b", seconds = 0.05 } })
  local b = d .. "/Sample.b01"
  local text = "fake boundary conditions\r\nsecond line\r\n"
  assert(fs.write(b, text))
  local before = fs.stat(b)
  -- the engine itself refuses it
  local alone = H.tmpdir("sched-crlf")
  for _, f in ipairs({ "Sample.p01.tmp.hdf", "Sample.b01", "Sample.x01" }) do
    assert(fs.copy(d .. "/" .. f, alone .. "/" .. f))
  end
  local home = H.sim("linux")
  local direct = assert(sys.run({ home .. "/bin/RasUnsteady", "Sample.p01.tmp.hdf", "x01" }, { cwd = alone,
    env = { LD_LIBRARY_PATH = home .. "/libs", FAKE_RAS_SECONDS = "0" }, timeout = 30 }))
  lu.assertEquals(direct.code, 2)
  lu.assertStrContains(direct.stderr, "Sample.b01 has Windows line ends (CR LF)")
  -- through rasrun it runs, next to a plan whose boundary file has LF ends
  local prj = assert(rasrun.project.open(d .. "/Sample.prj"))
  local r = run(pool_of(H.local_worker("a", 2)), { project = prj })
  lu.assertTrue(r.ok, tostring(r.results[1].reason) .. "; " .. tostring(r.results[2].reason))
  lu.assertEquals(H.read(b), text)
  local after = fs.stat(b)
  lu.assertEquals(after.mtime, before.mtime)
end

-- The Linux engine is given the .pNN.tmp.hdf under the name it has on disk
-- (Windows writes "EX1.P01.TMP.HDF" as readily as the lower-case name).
function TestSched:test_an_upper_case_tmp_hdf_runs_on_the_linux_engine()
  local _, d = project({ { title = "a", seconds = 0.05 } })
  assert(os.rename(d .. "/Sample.p01.tmp.hdf", d .. "/Sample.P01.TMP.HDF"))
  local prj = assert(rasrun.project.open(d .. "/Sample.prj"))
  local r = run(pool_of(H.local_worker("a", 1)), { project = prj })
  lu.assertTrue(r.ok, r.results[1].reason)
  lu.assertTrue(fs.isfile(d .. "/Sample.p01.hdf"))
end

-- A plan whose flow starts from another plan's restart file waits for it
-- (after): the file that plan writes is staged in, although it did not
-- exist when the run began; and when that plan runs again, so does the one
-- that restarts from it, up to date or not.
function TestSched:test_a_plan_restarting_from_another_gets_its_restart_file_and_reruns_with_it()
  local rst = "Sample.p01.03JAN1900 0000.rst"
  local prj = project({ { title = "spin-up", seconds = 0.05, flow = "u01", write_ic = true },
                        { title = "from the spin-up", seconds = 0.05, flow = "u02", restart = rst } })
  local win = rasrun.worker { type = "local", name = "win", slots = 2, kill_grace = 0.5,
                              engine = { kind = "windows", home = H.sim("windows") } }
  local after = { ["02"] = { "01" } }
  -- without the spin-up's file and nothing to make it, plan 02 cannot run
  local r = run(pool_of(win), { project = prj, plans = { "02" } })
  lu.assertEquals(H.result(r, "02").status, "failed")
  lu.assertStrContains(H.result(r, "02").reason, rst .. " (the restart file Sample.u02 names)")
  r = run(pool_of(win), { project = prj, after = after, run_dir = prj.dir .. "/run2" })
  lu.assertTrue(r.ok, H.result(r, "02").reason)
  lu.assertTrue(fs.isfile(prj.dir .. "/" .. rst))
  -- nothing changed: both are up to date
  r = run(pool_of(win), { project = prj, after = after, run_dir = prj.dir .. "/run3" })
  lu.assertEquals({ H.result(r, "01").status, H.result(r, "02").status }, { "skipped", "skipped" })
  -- the spin-up's plan changed: it runs, and so does the plan after it
  fs.touch(prj.dir .. "/Sample.p01", sys.now() + 5)
  r = run(pool_of(win), { project = prj, after = after, run_dir = prj.dir .. "/run4" })
  lu.assertEquals({ H.result(r, "01").status, H.result(r, "02").status }, { "ok", "ok" })
  -- a resume of run2, which finished both: the spin-up changed since, so it
  -- runs again, and so does the plan after it, as in any run
  r = run(pool_of(win), { project = prj, after = after, resume = prj.dir .. "/run2" })
  lu.assertEquals({ H.result(r, "01").status, H.result(r, "02").status }, { "ok", "ok" })
  lu.assertEquals({ H.result(r, "01").attempts, H.result(r, "02").attempts }, { 2, 2 })
  lu.assertNil(H.result(r, "02").resumed)
  -- the restart file gone, plan 02 changed: the spin-up, up to date, runs
  -- again to make it, as make remakes a missing intermediate file
  os.remove(prj.dir .. "/" .. rst)
  fs.touch(prj.dir .. "/Sample.p01", sys.now() - 100)
  fs.touch(prj.dir .. "/Sample.p02", sys.now())
  lu.assertEquals((rasrun.project.open(prj.path):plan("01"):result_state()), "current")
  r = run(pool_of(win), { project = prj, after = after, run_dir = prj.dir .. "/run5" })
  lu.assertEquals({ H.result(r, "01").status, H.result(r, "02").status }, { "ok", "ok" })
  lu.assertTrue(fs.isfile(prj.dir .. "/" .. rst))
  -- a restart file the plan it waits for does not write: that one stays
  -- skipped (running it would not make the file), and plan 02 says what is missing
  local u02 = H.read(prj.dir .. "/Sample.u02")
  assert(fs.write(prj.dir .. "/Sample.u02", (u02:gsub("Restart Filename=[^\r\n]*", "Restart Filename=.\\Other.rst"))))
  fs.touch(prj.dir .. "/Sample.p01", sys.now() - 100)
  prj = rasrun.project.open(prj.path)
  r = run(pool_of(win), { project = prj, after = after, run_dir = prj.dir .. "/run6" })
  lu.assertEquals({ H.result(r, "01").status, H.result(r, "02").status }, { "skipped", "failed" })
  lu.assertStrContains(H.result(r, "02").reason, "Other.rst")
  -- the same in a resume: plan 01 finished in the run resumed, and the
  -- restart file it wrote is gone since
  assert(fs.write(prj.dir .. "/Sample.u02", u02))
  os.remove(prj.dir .. "/" .. rst)
  fs.touch(prj.dir .. "/Sample.p02", sys.now())
  prj = rasrun.project.open(prj.path)
  r = run(pool_of(win), { project = prj, after = after, resume = prj.dir .. "/run2" })
  lu.assertEquals({ H.result(r, "01").status, H.result(r, "02").status }, { "ok", "ok" })
  lu.assertNil(H.result(r, "01").resumed)
end

-- A flow that names its restart file in another case than the plan it
-- waits for writes it ("Sample.P01..." for "Sample.p01..."): the file is
-- found and staged under the flow's spelling, as HEC-RAS on Windows finds it.
function TestSched:test_a_restart_file_named_in_another_case_is_staged()
  local prj = project({ { title = "spin-up", seconds = 0.05, flow = "u01", write_ic = true },
                        { title = "from it", seconds = 0.05, flow = "u02", restart = "Sample.P01.03JAN1900 0000.rst" } })
  local win = rasrun.worker { type = "local", name = "win", slots = 2, engine = { kind = "windows", home = H.sim("windows") } }
  local r = run(pool_of(win), { project = prj, after = { ["02"] = { "01" } } })
  lu.assertTrue(r.ok, tostring(H.result(r, "02").reason))
  lu.assertTrue(fs.isfile(prj.dir .. "/Sample.p01.03JAN1900 0000.rst"))
end

-- Each project remembers its plans' run times; longest_first starts the
-- longest known plan first.
function TestSched:test_run_times_are_remembered_per_project_and_order_longest_first()
  local a = project({ { title = "short", seconds = 0.1 }, { title = "long", seconds = 0.8 },
                      { title = "middle", seconds = 0.4 } })
  local b = project({ { title = "other", seconds = 0.2 } })
  local pool = pool_of(H.local_worker("here", 1))
  local r = H.run(pool, { projects = { a, b }, run_dir = a.dir .. "/run1" })
  lu.assertTrue(r.ok)
  local ha = json.decode(H.read(a.dir .. "/.rasrun/history.json"))
  local hb = json.decode(H.read(b.dir .. "/.rasrun/history.json"))
  lu.assertEquals({ ha["01"] ~= nil, ha["02"] ~= nil, ha["03"] ~= nil, ha["04"] }, { true, true, true, nil })
  lu.assertTrue(ha["02"] > ha["03"] and ha["03"] > ha["01"])
  lu.assertEquals(#(function() local t = {} for k in pairs(hb) do t[#t + 1] = k end return t end)(), 1)
  lu.assertNotNil(hb["01"])
  local r2 = H.run(pool, { project = a, force = true, order = "longest_first", run_dir = a.dir .. "/run2" })
  lu.assertTrue(r2.ok)
  local started = {}
  for _, res in ipairs(r2.results) do started[#started + 1] = { res.plan, res.history[1].started } end
  table.sort(started, function(x, y) return x[2] < y[2] end)
  lu.assertEquals({ started[1][1], started[2][1], started[3][1] }, { "02", "03", "01" })
  -- a damaged history (a crash while it was written) is forgotten, not fatal
  assert(fs.write(b.dir .. "/.rasrun/history.json", ""))
  lu.assertTrue(H.run(pool, { project = b, force = true, order = "longest_first", run_dir = b.dir .. "/run3" }).ok)
  lu.assertNotNil(json.decode(H.read(b.dir .. "/.rasrun/history.json"))["01"])
end

function TestSched:test_tiers_fill_in_order()
  local prj = project({ { title = "a", seconds = 0.4 }, { title = "b", seconds = 0.4 },
                        { title = "c", seconds = 0.4 } })
  local t0 = H.local_worker("t0", 2, { tier = 0 })
  local t1 = H.local_worker("t1", 2, { tier = 1 })
  local r = run(pool_of(t1, t0), { project = prj, plans = { "01" } })
  lu.assertEquals(r.results[1].worker, "t0")
  r = run(pool_of(t1, t0), { project = prj, force = true, run_dir = prj.dir .. "/run2" })
  local on = {}
  for _, res in ipairs(r.results) do on[res.plan] = res.worker end
  lu.assertEquals(on, { ["01"] = "t0", ["02"] = "t0", ["03"] = "t1" })
end

function TestSched:test_up_to_date_plans_are_skipped_unless_forced()
  local prj = project({ { title = "a", seconds = 0.05 }, { title = "b", seconds = 0.05 } })
  local pool = pool_of(H.local_worker("a", 2))
  lu.assertEquals(run(pool, { project = prj }).counts.ok, 2)
  local r = run(pool, { project = prj, run_dir = prj.dir .. "/run2" })
  lu.assertEquals(r.counts.skipped, 2)
  lu.assertStrContains(r.results[1].reason, "up to date")
  lu.assertTrue(r.ok)
  fs.touch(prj.dir .. "/Sample.p02", sys.now() + 5)
  prj = rasrun.project.open(prj.path)
  r = run(pool, { project = prj, run_dir = prj.dir .. "/run3" })
  lu.assertEquals(H.result(r, "01").status, "skipped")
  lu.assertEquals(H.result(r, "02").status, "ok")
  r = run(pool, { project = prj, force = true, run_dir = prj.dir .. "/run4" })
  lu.assertEquals(r.counts.ok, 2)
  -- the Linux engine's inputs count too: new ones from Windows HEC-RAS
  fs.touch(prj.dir .. "/Sample.b01", sys.now() + 10)
  fs.touch(prj.dir .. "/Sample.p02.tmp.hdf", sys.now() + 10)
  lu.assertStrContains(select(2, prj:plan("01"):result_state()), "Sample.b01 is newer")
  r = run(pool, { project = prj, run_dir = prj.dir .. "/run5" })
  lu.assertEquals(r.counts.ok, 2)
end

-- report.html is UTF-8: a plan title as Windows HEC-RAS writes it
-- (Windows-1252) shows as its characters; markup in titles is text.
function TestSched:test_the_report_shows_windows_titles_as_text()
  local prj = project({ { title = "R\xEDo Grande \x96 <100-yr> & \"more\"", seconds = 0.05 } })
  local r = run(pool_of(H.local_worker("a", 1)), { project = prj })
  lu.assertEquals(r.counts.ok, 1)
  local html = H.read(r.run_dir .. "/report.html")
  lu.assertStrContains(html, "Río Grande – &lt;100-yr&gt; &amp; &quot;more&quot;")
  lu.assertNil(html:find("\xED", 1, true))
  lu.assertNil(html:find("<100-yr>", 1, true))
end

-- The live total line tells cancelled plans from failed ones, as the
-- summary after it does; plans a resume found failed count as failed.
function TestSched:test_the_live_total_tells_cancelled_from_failed()
  local out = {}
  local p = require("rasrun.progress").new({ progress = "plain" })
  p.mode, p.out = "live", { write = function(_, s) out[#out + 1] = s end, flush = function() end }
  p:begin(3, { { status = "failed" }, {}, {} }, { { slots = 2 } })
  p:event({ type = "start", job = "Sample/p02", worker = "here", attempt = 1 })
  p:event({ type = "done", job = "Sample/p02", status = "cancelled", reason = "cancelled (Interrupt)" })
  lu.assertStrContains(table.concat(out), "[2/3 done, 1 failed, 1 cancelled, 0 running")
end

-- An on_event that raises is named with the event and plan it was given;
-- the run goes on.
function TestSched:test_an_on_event_error_names_its_event_and_plan()
  local d = H.tmpdir("onev")
  H.project(d, { { title = "a", seconds = 0.05 } })
  local recipe = d .. "/r.lua"
  assert(fs.write(recipe, table.concat({
    'local rasrun = require "rasrun"',
    'local pool = rasrun.pool { rasrun.worker { type = "local", engine = { kind = "linux", home = rasrun.sim.home("linux") } } }',
    'local run = pool:run { project = arg[1] .. "/Sample.prj", progress = false, run_dir = arg[1] .. "/run",',
    '  on_event = function(ev) if ev.type == "done" then error({}) end end }',
    'return run.ok and 0 or 1', "" }, "\n")))
  local r = H.rasrun({ "run", recipe, d }, { timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "rasrun: on_event (a done event of Sample/p01) raised an error: a table value")
end

-- What the recipe's code prints while the live block is on the screen (an
-- on_event, a check) is not drawn over: the block is taken off the screen
-- first, and drawn again after it, below what it printed.
function TestSched:test_what_the_recipe_prints_stays_above_the_live_block()
  local out = {}
  local p = require("rasrun.progress").new({ progress = "plain" })
  p.mode, p.out = "live", { write = function(_, s) out[#out + 1] = s end, flush = function() end }
  p:begin(2, { {}, {} }, { { slots = 1 } })
  p:event({ type = "start", job = "Sample/p01", worker = "here", attempt = 1 })
  p:draw()
  local drawn = p.drawn
  lu.assertTrue(drawn > 0)
  local ret = table.pack(p:around(function(a, b)
    out[#out + 1] = "PRINTED\n"
    return a + b, "two"
  end, 1, 2))
  lu.assertEquals({ ret[1], ret[2], ret.n }, { 3, "two", 2 })
  local text = table.concat(out)
  local printed = text:find("PRINTED", 1, true)
  -- the block was erased just before, and drawn again just after
  lu.assertStrContains(text:sub(1, printed - 1), ("\27[%dA\27[J"):format(drawn))
  lu.assertStrContains(text:sub(printed), "Sample/p01")
  lu.assertEquals(p.drawn, drawn)
end

-- Only the recipe's own code is run with the live block off the screen:
-- the standard checks print nothing, and the block stays drawn while they
-- run (it went blank for every check).
function TestSched:test_the_live_block_stays_while_the_standard_checks_run()
  local P = getmetatable(require("rasrun.progress").new({ progress = "plain" })).__index
  local around, arounds = P.around, 0
  P.around = function(self, ...) arounds = arounds + 1 return around(self, ...) end
  local ok, err = pcall(function()
    local prj = project({ { title = "a", seconds = 0.05 }, { title = "b", seconds = 0.05 } })
    local pool = pool_of(H.local_worker("here", 2))
    for _, check in ipairs({ rasrun.checks.standard {}, false }) do
      arounds = 0
      lu.assertTrue(run(pool, { project = prj, force = true, progress = "plain", check = check }).ok)
      lu.assertEquals(arounds, 0)
    end
    -- a recipe's check function, a set with extra checks, and a set the
    -- recipe added a check of its own to, may print
    local extended = rasrun.checks.standard {}
    extended.list[#extended.list + 1] = { name = "mine", fn = function() return true end }
    for _, check in ipairs({ function() return true end,
                             rasrun.checks.standard { extra = { { name = "mine", fn = function() return true end } } },
                             extended }) do
      arounds = 0
      lu.assertTrue(run(pool, { project = prj, force = true, progress = "plain", check = check }).ok)
      lu.assertEquals(arounds, 2)
    end
  end)
  P.around = around
  if not ok then error(err, 0) end
end

-- The time left is never less than the running plan furthest from its end
-- needs (the work left was spread over every slot, idle ones too); a long
-- plan key keeps its plan number and leaves room for the worker, the time
-- and the state on its line.
function TestSched:test_the_live_eta_and_long_keys()
  local out = {}
  local p = require("rasrun.progress").new({ progress = "plain" })
  p.mode, p.out = "live", { write = function(_, s) out[#out + 1] = s end, flush = function() end }
  p:begin(5, { {}, {}, {}, {}, {} }, { { slots = 4 } })
  for i = 1, 4 do
    p:event({ type = "start", job = "E/p0" .. i, worker = "here", attempt = 1 })
    p:event({ type = "done", job = "E/p0" .. i, status = "ok", elapsed = 8, attempts = 1 })
  end
  p:event({ type = "start", job = "E/p05", worker = "here", attempt = 1, started = sys.now() - 2 })
  local eta = p:eta()
  lu.assertTrue(eta > 5.9 and eta <= 6, tostring(eta))
  local key = "Project_" .. ("N"):rep(80) .. "/p07"
  p:event({ type = "start", job = key, worker = "a worker with a long name", attempt = 1 })
  p:draw()
  local line = table.concat(out):match("\n?([^\n]*p07[^\n]*)")
  lu.assertStrContains(line, "  Project_NN...NNNNNNN/p07 a wor...g name    00:00  staging")
end

-- A file dated in the future (written where the clock is ahead) is told as
-- such, not as a change during the run; a result dated in the future is not
-- taken as up to date, whatever its inputs' times.
function TestSched:test_files_dated_in_the_future_are_told_as_such()
  local prj, d = project({ { title = "one", seconds = 0.05 }, { title = "two", seconds = 0.05 } })
  -- (the Windows engine reads the geometry's text file)
  local pool = pool_of(H.local_worker("a", 2, { engine = { kind = "windows", home = H.sim("windows") } }))
  lu.assertEquals(sys.run({ "touch", "-d", "+1 hour", d .. "/Sample.g01" }).code, 0)
  local r = run(pool, { project = prj })
  lu.assertEquals(r.counts.ok, 2)
  lu.assertStrContains(H.result(r, "01").reason, "Sample.g01 is dated in the future (")
  lu.assertNil(H.result(r, "01").reason:find("changed while the plan ran"))
  prj = rasrun.project.open(prj.path)
  local state, why = prj:plan("01"):result_state()
  lu.assertEquals(state, "stale")
  lu.assertStrContains(why, "Sample.g01 is newer than the result (it is dated in the future (")
  -- the geometry's time back to now; a result dated in the future, its plan edited since
  lu.assertEquals(sys.run({ "touch", d .. "/Sample.g01" }).code, 0)
  r = run(pool, { project = prj, run_dir = d .. "/run2" })
  lu.assertEquals(r.counts.ok, 2)
  lu.assertEquals(sys.run({ "touch", "-d", "+1 hour", d .. "/Sample.p01.hdf" }).code, 0)
  assert(fs.write(d .. "/Sample.p01", H.read(d .. "/Sample.p01") .. "\r\n"))
  prj = rasrun.project.open(prj.path)
  state, why = prj:plan("01"):result_state()
  lu.assertEquals(state, "stale")
  lu.assertStrContains(why, "the result is dated in the future (")
  r = run(pool, { project = prj, run_dir = d .. "/run3" })
  lu.assertEquals({ H.result(r, "01").status, H.result(r, "02").status }, { "ok", "skipped" })
end

-- Another plan's result copied over this plan's is not this plan's, however
-- new it is and whatever its checks say: it is run again.
function TestSched:test_another_plans_result_is_never_up_to_date()
  local prj, d = project({ { title = "one", seconds = 0.05 }, { title = "two", seconds = 0.05 } })
  local pool = pool_of(H.local_worker("a", 2))
  lu.assertEquals(run(pool, { project = prj }).counts.ok, 2)
  assert(fs.write(d .. "/Sample.p02.hdf", H.read(d .. "/Sample.p01.hdf")))
  prj = rasrun.project.open(prj.path)
  local state, why = prj:plan("02"):result_state()
  lu.assertEquals(state, "stale")
  lu.assertEquals(why, "the result was made for plan Sample.p01, not Sample.p02")
  lu.assertEquals(prj:plan("01"):result_state(), "current")
  local r = run(pool, { project = prj, run_dir = d .. "/run2" })
  lu.assertEquals({ H.result(r, "01").status, H.result(r, "02").status }, { "skipped", "ok" })
end

-- A source that changes while its plan runs (the boundary file edited, the
-- geometry edited) is not in that plan's result: the result must not count
-- as up to date. The report says so when the engine read that file.
function TestSched:test_a_result_made_from_inputs_changed_meanwhile_is_out_of_date()
  local prj, d = project({ { title = "edited under it", seconds = 1 }, { title = "left alone", seconds = 0.05 },
                           { title = "geometry edited", seconds = 1 } })
  local pool = pool_of(H.local_worker("a", 3))
  -- (file times come from a clock a tick coarser than the attempt's start:
  -- an edit within that tick of it can read as older, which the result's
  -- dating does not promise to see; the edit comes a tick later)
  local function edit(name)
    sys.sleep(0.02)
    assert(fs.write(d .. "/" .. name, H.read(d .. "/" .. name) .. "\r\n"))
  end
  local r = run(pool, { project = prj, on_event = function(ev)
    if ev.type == "launched" and ev.plan == "01" then edit("Sample.b01") end
    if ev.type == "launched" and ev.plan == "03" then edit("Sample.g01") end
  end })
  lu.assertEquals(r.counts.ok, 3)
  lu.assertStrContains(H.result(r, "01").reason, "Sample.b01 changed while the plan ran")
  lu.assertNil(H.result(r, "02").reason)
  prj = rasrun.project.open(prj.path)
  lu.assertEquals(prj:plan("01"):result_state(), "stale")
  lu.assertEquals(prj:plan("02"):result_state(), "stale") -- plan 02 shares the geometry
  lu.assertEquals(prj:plan("03"):result_state(), "stale")
  r = run(pool, { project = prj, run_dir = d .. "/run2" })
  lu.assertEquals(r.counts.ok, 3) -- run again, from what the files hold now
  prj = rasrun.project.open(prj.path)
  for _, n in ipairs({ "01", "02", "03" }) do lu.assertEquals(prj:plan(n):result_state(), "current", n) end
  lu.assertEquals(run(pool, { project = prj, run_dir = d .. "/run3" }).counts.skipped, 3)
end

function TestSched:test_a_forced_rerun_writes_into_replaced_results_never_into_shared_files()
  local plans = {}
  for k = 1, 6 do plans[k] = { title = "p" .. k, seconds = 0.05 } end
  local prj = project(plans)
  -- one slot: plan k+2 starts before plan k+1's result is committed, so
  -- from plan 4 on each copy has a replaced result to go into
  local pool = pool_of(H.local_worker("a", 1))
  lu.assertEquals(run(pool, { project = prj }).counts.ok, 6)
  local function result(k) return ("%s/Sample.p%02d.hdf"):format(prj.dir, k) end
  local first = {}
  for k = 1, 6 do first[fs.stat(result(k)).ino] = true end
  -- a backup by hard link (as snapshot tools make) shares the file
  local backup = prj.dir .. "/backup.hdf"
  lu.assertEquals(sys.run({ "ln", result(1), backup }).code, 0)
  local saved = fs.read(backup)
  -- and someone is reading the old result of plan 6 (RAS Mapper, a script)
  local reader = assert(io.open(result(6), "rb"))
  local old6 = fs.read(result(6))

  local run2 = prj.dir .. "/run2"
  local r = run(pool, { project = prj, force = true, run_dir = run2 })
  lu.assertEquals(r.counts.ok, 6)
  local reused = 0
  for k = 1, 6 do
    local st = fs.stat(result(k))
    if first[st.ino] then reused = reused + 1 end
    lu.assertEquals(st.nlink, 1)
    lu.assertEquals(rasrun.results.read(result(k)).solution, "Unsteady Finished Successfully")
  end
  -- replaced results were written again: fewer new files on disk
  lu.assertTrue(reused >= 3, ("%d of 6 results were written into replaced files"):format(reused))
  -- the shared one was not: the backup still holds the first run's result
  lu.assertEquals(fs.read(backup), saved)
  lu.assertEquals(fs.stat(backup).nlink, 1)
  -- nor the one being read: the reader still has the old result whole
  lu.assertEquals(reader:read("a"), old6)
  reader:close()
  lu.assertFalse(fs.exists(run2 .. "/.spares"))
  -- each result was swapped into place: nothing staged is left beside them
  for _, name in ipairs(fs.list(prj.dir)) do
    lu.assertNil(name:find("rasrun-", 1, true), name)
    lu.assertNil(name:find("%.part$"), name)
  end
end

-- A result that cannot go into place (a folder holds its name) fails the
-- plan, naming both; the folder is left as it was, and the staged result is
-- kept in the run folder, not beside the project's files. A result that is a
-- symbolic link is replaced, as a rename replaces it; its target is not
-- written.
function TestSched:test_a_result_that_cannot_go_into_place_fails_the_plan_and_names_it()
  local prj = project({ { title = "a", seconds = 0 }, { title = "b", seconds = 0 } })
  local blocked = prj.dir .. "/Sample.p01.hdf"
  assert(fs.mkdirs(blocked .. "/inside"))
  local target = H.tmpdir("elsewhere") .. "/kept.hdf"
  assert(fs.write(target, "not a result"))
  lu.assertEquals(sys.run({ "ln", "-s", target, prj.dir .. "/Sample.p02.hdf" }).code, 0)
  local r = run(pool_of(H.local_worker("a", 1)), { project = prj })
  local one = H.result(r, "01")
  lu.assertEquals(one.status, "failed")
  lu.assertStrContains(one.reason, "cannot move")
  lu.assertStrContains(one.reason, blocked)
  lu.assertTrue(fs.isdir(blocked .. "/inside"))
  lu.assertEquals(H.result(r, "02").status, "ok")
  lu.assertNil(fs.readlink(prj.dir .. "/Sample.p02.hdf")) -- a file now, not the link
  lu.assertEquals(fs.read(target), "not a result")
  for _, name in ipairs(fs.list(prj.dir)) do lu.assertNil(name:find("rasrun-", 1, true), name) end
  lu.assertTrue(#fs.list(r.run_dir .. "/attempts") > 0)
end

-- A Windows-engine project whose plan ran once, its side outputs (compute
-- messages, the geometry's outputs) marked "before NAME": the project, its
-- folder, a pool and the side outputs' names.
local function ran_once_with_side_outputs()
  local prj, d = project({ { title = "a", seconds = 0, detailed = true } })
  local pool = pool_of(rasrun.worker { type = "local", name = "win", slots = 1,
                                       engine = { kind = "windows", home = H.sim("windows") } })
  lu.assertEquals(run(pool, { project = prj, run_dir = d .. "/run1" }).counts.ok, 1)
  local side = {}
  for _, name in ipairs(fs.list(d)) do
    if name:find("computeMsgs", 1, true) or name:match("%.bco%d%d$") or name:match("%.c%d%d$") then
      side[#side + 1] = name
      assert(fs.write(d .. "/" .. name, "before " .. name))
    end
  end
  lu.assertTrue(#side >= 2, table.concat(side, " "))
  return prj, d, pool, side
end

-- The same with the Windows engine's side outputs (compute messages, the
-- geometry's outputs): none of them replaces the project's while the result
-- cannot go into place.
function TestSched:test_a_result_that_cannot_go_into_place_replaces_no_side_output()
  local prj, d, pool, side = ran_once_with_side_outputs()
  assert(fs.rename(d .. "/Sample.p01.hdf", d .. "/saved.hdf"))
  assert(fs.mkdirs(d .. "/Sample.p01.hdf"))
  local r = run(pool, { project = prj, force = true, run_dir = d .. "/run2" })
  lu.assertEquals(H.result(r, "01").status, "failed")
  lu.assertStrContains(H.result(r, "01").reason, "Is a directory")
  for _, name in ipairs(side) do lu.assertEquals(fs.read(d .. "/" .. name), "before " .. name) end
end

-- A result that the file system refuses to replace (here an immutable one;
-- a sticky shared folder or a mount on it do the same) after the side
-- outputs went into place: those are taken back, the project keeps every
-- old file, and the attempt's new files are kept in the run folder.
function TestSched:test_a_commit_that_fails_halfway_takes_back_what_it_put_in_place()
  local prj, d, pool, side = ran_once_with_side_outputs()
  local result = d .. "/Sample.p01.hdf"
  local old = H.read(result)
  if sys.run({ "chattr", "+i", result }, { timeout = 10 }).code ~= 0 then
    lu.skip("chattr +i: this file system has no immutable files")
  end
  local ok, r = pcall(run, pool, { project = prj, force = true, run_dir = d .. "/run2" })
  sys.run({ "chattr", "-i", result }, { timeout = 10 })
  lu.assertTrue(ok, tostring(r))
  lu.assertEquals(H.result(r, "01").status, "failed")
  lu.assertStrContains(H.result(r, "01").reason, "cannot move")
  lu.assertStrContains(H.result(r, "01").reason, "Operation not permitted")
  lu.assertEquals(H.read(result), old)
  for _, name in ipairs(side) do lu.assertEquals(fs.read(d .. "/" .. name), "before " .. name) end
  for _, name in ipairs(fs.list(d)) do lu.assertNil(name:find("rasrun-", 1, true), name) end
  local kept = fs.list(fs.glob(d .. "/run2/attempts/*")[1])
  for _, name in ipairs(side) do
    local found = false
    for _, k in ipairs(kept) do found = found or k == name end
    lu.assertTrue(found, name .. " not kept in the run folder: " .. table.concat(kept, " "))
  end
end

-- ext4's 'T' mark on a folder: nil where the file system has no such marks.
local function top_mark(dir)
  local r = sys.run({ "lsattr", "-d", dir }, { timeout = 10 })
  if r.code ~= 0 then return nil end
  return r.stdout:match("^(%S+)"):find("T", 1, true) ~= nil
end

-- The run folder and the run's work folder are marked as tops of directory
-- hierarchies, so that logs and slot folders go to fresh block groups (where
-- the disk has the mark; elsewhere they are plain folders).
function TestSched:test_run_and_work_folders_are_marked_as_tops_where_the_disk_can()
  local workdir = H.tmpdir("work")
  local prj = project({ { title = "a", seconds = 0.3 } })
  local work_mark
  local r = run(pool_of(H.local_worker("here", 1, { workdir = workdir })), { project = prj,
    on_event = function(ev)
      if ev.type == "launched" then work_mark = top_mark(workdir .. "/" .. fs.list(workdir)[1]) end
    end })
  lu.assertTrue(r.ok)
  local run_mark = top_mark(r.run_dir)
  if run_mark == nil then print("  (no ext4 marks here: skipped)") return end
  lu.assertTrue(run_mark)
  lu.assertTrue(work_mark)
  lu.assertFalse(top_mark(r.run_dir .. "/logs")) -- only the tops
  lu.assertFalse(top_mark(workdir))               -- the user's folder is left as it was
end

-- A failed attempt's files are kept in the run folder also when that folder
-- is on another file system than the project (copied there).
function TestSched:test_a_failed_attempt_is_kept_in_a_run_folder_on_another_file_system()
  if not fs.isdir("/dev/shm") then lu.skip("no /dev/shm: no second file system") end
  local tmpdir = os.getenv("TMPDIR")
  sys.setenv("TMPDIR", "/dev/shm")
  local other_run = H.tmpdir("xfs-run")
  sys.setenv("TMPDIR", tmpdir)
  local prj, d = project({ { title = "bad", seconds = 0, mode = "unstable" } })
  local r = run(pool_of(H.local_worker("a", 1)), { project = prj, run_dir = other_run })
  lu.assertEquals(H.result(r, "01").status, "failed")
  lu.assertEquals(fs.list(other_run .. "/attempts/Sample_p01-a1"), { "Sample.p01.hdf" })
  for _, name in ipairs(fs.list(d)) do lu.assertNil(name:find("rasrun-", 1, true), name) end
end

function TestSched:test_replaced_results_across_file_systems_give_way_to_new_files()
  if not fs.isdir("/dev/shm") then lu.skip("no /dev/shm: no second file system") end
  local tmpdir = os.getenv("TMPDIR")
  sys.setenv("TMPDIR", "/dev/shm")
  local other_run, other_work = H.tmpdir("xfs-run"), H.tmpdir("xfs-work")
  sys.setenv("TMPDIR", tmpdir)
  local plans = {}
  for k = 1, 4 do plans[k] = { title = "p" .. k, seconds = 0.05 } end
  local prj = project(plans)
  local function all_good(r)
    lu.assertEquals(r.counts.ok, 4)
    for k = 1, 4 do
      local res = rasrun.results.read(("%s/Sample.p%02d.hdf"):format(prj.dir, k))
      lu.assertEquals(res.solution, "Unsteady Finished Successfully")
    end
  end
  all_good(run(pool_of(H.local_worker("a", 1)), { project = prj }))
  -- the run folder elsewhere: replaced results cannot be linked there
  all_good(run(pool_of(H.local_worker("a", 1)), { project = prj, force = true, run_dir = other_run }))
  lu.assertFalse(fs.exists(other_run .. "/.spares"))
  -- the work folders elsewhere: a kept file cannot be moved into them
  local run3 = prj.dir .. "/run3"
  all_good(run(pool_of(H.local_worker("b", 1, { workdir = other_work })),
    { project = prj, force = true, run_dir = run3 }))
  lu.assertFalse(fs.exists(run3 .. "/.spares"))
end

function TestSched:test_windows_engine_and_shared_geometry_outputs()
  local prj = project({ { title = "a", seconds = 0.2, geom = "g01" }, { title = "b", seconds = 0.2, geom = "g01" } })
  local w = rasrun.worker { type = "local", name = "win", slots = 2,
                            engine = { kind = "windows", home = H.sim("windows") } }
  local events = {}
  local r = run(pool_of(w), { project = prj, on_event = function(ev) events[#events + 1] = ev.type end })
  lu.assertTrue(r.ok)
  lu.assertTrue(fs.isfile(prj.dir .. "/Sample.c01"))  -- the geometry output came back
  lu.assertTrue(fs.isfile(prj.dir .. "/Sample.bco01"))
  local seen = table.concat(events, " ")
  lu.assertStrContains(seen, "start")
  lu.assertStrContains(seen, "launched")
  lu.assertStrContains(seen, "done")
end

-- Plans of one geometry whose .xGG is missing both run the preprocessor and
-- stage its output into the project folder: each under its own name, so a
-- failing one never takes the other's.
function TestSched:test_plans_of_one_geometry_stage_its_outputs_apart()
  for round = 1, 3 do
    local d = H.tmpdir("sched")
    local prj_path = H.project(d, { { title = "fails", seconds = 0.1, mode = "unstable" },
                                    { title = "works", seconds = 0.1 } })
    lu.assertTrue(os.remove(d .. "/Sample.x01"))
    local prj = rasrun.project.open(prj_path)
    local r = run(pool_of(H.local_worker("a", 2)), { project = prj })
    lu.assertEquals(r.results[1].status, "failed", "round " .. round)
    lu.assertEquals(r.results[2].status, "ok", "round " .. round .. ": " .. tostring(r.results[2].reason))
    lu.assertEquals(fs.read(d .. "/Sample.x01"), "fake preprocessed geometry\n")
    H.cleanup()
  end
end

-- A project whose files are spelt in upper case (EX1.P01.HDF, as older
-- HEC-RAS versions wrote them): the new result replaces the old one, on
-- either engine, instead of landing beside it while the project goes on
-- reading the old.
function TestSched:test_a_result_spelt_in_upper_case_is_replaced()
  for _, kind in ipairs({ "linux", "windows" }) do
    local d = H.tmpdir("sched")
    local prj_path = H.project(d, { { title = "a", seconds = 0.05 } })
    assert(fs.write(d .. "/Sample.P01.HDF", "an old result"))
    local w = H.local_worker("a", 1, { engine = { kind = kind, home = H.sim(kind) } })
    local r = run(pool_of(w), { project = rasrun.project.open(prj_path) })
    lu.assertEquals(r.results[1].result, d .. "/Sample.P01.HDF", kind)
    local results = {}
    for _, n in ipairs(fs.list(d)) do
      if n:lower():match("^sample%.p01%.hdf$") then results[#results + 1] = n end
    end
    lu.assertEquals(results, { "Sample.P01.HDF" }, kind)
    lu.assertEquals((rasrun.project.open(prj_path):plan("01"):result_state()), "current", kind)
  end
end

-- Side outputs too: an engine that spells a file otherwise than the project
-- does (EX1.c01 for EX1.C01, as Windows, which does not mind the case,
-- allows) replaces the project's file instead of landing beside it.
function TestSched:test_side_outputs_keep_the_projects_spelling()
  -- per engine: the project's files in upper case, which the engine writes in lower case
  local old = { windows = { "Sample.BCO01", "Sample.C01" }, linux = { "Sample.X01" } }
  local new = { BCO01 = "fake unsteady log\n", C01 = "fake preprocessed geometry\n",
                X01 = "fake preprocessed geometry\n" }
  for _, kind in ipairs({ "linux", "windows" }) do
    local d = H.tmpdir("sched")
    local prj_path = H.project(d, { { title = "a", seconds = 0.05 } })
    os.remove(d .. "/Sample.x01")
    for _, n in ipairs(old[kind]) do assert(fs.write(d .. "/" .. n, "an old file")) end
    local w = H.local_worker("a", 1, { engine = { kind = kind, home = H.sim(kind), preprocess = true } })
    local r = run(pool_of(w), { project = rasrun.project.open(prj_path) })
    lu.assertTrue(r.ok, kind .. ": " .. tostring(r.results[1].reason))
    local seen = {}
    for _, n in ipairs(fs.list(d)) do
      if n:lower():match("^sample%.[bcx]") and not n:lower():match("^sample%.b01") then seen[#seen + 1] = n end
    end
    table.sort(seen)
    lu.assertEquals(seen, old[kind], kind)
    for _, n in ipairs(old[kind]) do lu.assertEquals(fs.read(d .. "/" .. n), new[n:match("%.(%w+)$")], n) end
    for _, n in ipairs(fs.list(d)) do lu.assertNil(n:match("rasrun%-"), n) end
  end
end

-- Two files of the work folder that differ in case alone are one file in
-- the project: the one the engine made goes there, not the input's copy it
-- also changed, and nothing staged is left behind.
function TestSched:test_of_two_outputs_spelt_alike_the_engines_own_wins()
  local d = H.tmpdir("sched")
  local prj_path = H.project(d, { { title = "a", seconds = 0.05 } })
  assert(fs.write(d .. "/Sample.C01", "an old preprocessed geometry"))
  local home = d .. "/hecras"
  for _, argv in ipairs({ { "cp", "-a", H.sim("windows"), home }, { "mkdir", home .. "/real" },
                          { "mv", home .. "/Ras.exe", home .. "/real/Ras.exe" } }) do
    assert(sys.run(argv).code == 0, table.concat(argv, " "))
  end
  -- the real engine writes Sample.c01; this one also changes the input's copy
  assert(fs.write(home .. "/Ras.exe", table.concat({ "#!/bin/sh",
    '"$(dirname "$0")/real/Ras.exe" "$@"', "rc=$?", "echo changed >> Sample.C01", "exit $rc" }, "\n") .. "\n"))
  assert(sys.run({ "chmod", "755", home .. "/Ras.exe" }).code == 0)
  local w = H.local_worker("a", 1, { engine = { kind = "windows", home = home } })
  local r = run(pool_of(w), { project = rasrun.project.open(prj_path) })
  lu.assertTrue(r.ok, tostring(r.results[1].reason))
  lu.assertEquals(fs.read(d .. "/Sample.C01"), "fake preprocessed geometry\n")
  for _, n in ipairs(fs.list(d)) do
    lu.assertNotEquals(n, "Sample.c01")
    lu.assertNil(n:match("rasrun%-"), n)
  end
end

-- In a mixed pool, the Linux preprocessor's .x01 comes back first; the
-- Windows plan of the same geometry still brings back what only it makes
-- (.c01): geometry outputs come back once per file, not once per geometry.
function TestSched:test_a_mixed_pool_brings_back_every_geometry_output_once()
  local d = H.tmpdir("sched")
  local prj_path = H.project(d, { { title = "unsteady", seconds = 0.1, flow = "u01" },
                                  { title = "steady", seconds = 1, flow = "f01" } })
  lu.assertTrue(os.remove(d .. "/Sample.x01"))
  local prj = rasrun.project.open(prj_path)
  local lin = H.local_worker("lin", 1)
  local win = H.local_worker("win", 1, { tier = 1, engine = { kind = "windows", home = H.sim("windows") } })
  local r = run(pool_of(lin, win), { project = prj })
  lu.assertEquals({ H.result(r, "01").worker, H.result(r, "02").worker }, { "lin", "win" })
  lu.assertTrue(r.ok, tostring(H.result(r, "01").reason))
  lu.assertTrue(fs.isfile(d .. "/Sample.x01"))
  lu.assertTrue(fs.isfile(d .. "/Sample.c01"), "the Windows plan's .c01 was thrown away")
  for _, n in ipairs(fs.list(d)) do lu.assertNil(n:match("rasrun%-"), n) end
end

-- The preprocessor rewrites the .xGG: it gets a copy, never a link to the
-- project's file, and a failed attempt leaves the project's file as it was.
function TestSched:test_the_preprocessor_never_writes_the_projects_geometry_file()
  local prj, d = project({ { title = "crashes after preprocessing", seconds = 0.1, mode = "crash" } })
  local x = d .. "/Sample.x01"
  assert(fs.write(x, "the project's own preprocessed geometry\n"))
  local ino = fs.stat(x).ino
  local w = H.local_worker("a", 1, { engine = { kind = "linux", home = H.sim("linux"), preprocess = true } })
  local r = run(pool_of(w), { project = prj })
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertEquals(fs.read(x), "the project's own preprocessed geometry\n")
  lu.assertEquals(fs.stat(x).ino, ino)
  -- a successful run brings the new one back by rename
  prj = rasrun.project.open(H.project(d, { { title = "works", seconds = 0.1 } }))
  r = run(pool_of(w), { project = prj, force = true, run_dir = d .. "/run2" })
  lu.assertTrue(r.ok, tostring(r.results[1].reason))
  lu.assertEquals(fs.read(x), "fake preprocessed geometry\n")
end

-- A preprocessor that fails is named as the step that failed, not taken for
-- the engine (which never ran).
function TestSched:test_a_failing_preprocessor_is_named_in_the_reason()
  local home = H.engine_whose_preprocessor_fails(H.tmpdir("engine"))
  local prj = project({ { title = "a", seconds = 0 } })
  local w = H.local_worker("a", 1, { engine = { kind = "linux", home = home, preprocess = true } })
  local r = run(pool_of(w), { project = prj })
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason,
    "RasGeomPreprocess (step 1 of 2, before the engine) exited with code 2")
  lu.assertStrContains(r.results[1].reason, "cannot read the geometry")
end

-- Workers with the same install folder but their own preprocessor setting
-- each run the plan as their own setting says, whichever is listed first.
function TestSched:test_each_worker_keeps_its_own_preprocessor_setting()
  for _, never_first in ipairs({ false, true }) do
    local prj, d = project({ { title = "a", seconds = 0 } })
    local x = d .. "/Sample.x01"
    assert(fs.write(x, "the project's own preprocessed geometry\n")) -- newer than the geometry
    local function worker(name, preprocess, tier)
      return H.local_worker(name, 1, { tier = tier,
        engine = { kind = "linux", home = H.sim("linux"), preprocess = preprocess } })
    end
    -- the tier-0 worker runs the plan; the other is listed first
    local runs_it = worker("runs", never_first and true or false, 0)
    local other = worker("other", not never_first, 1)
    local r = run(pool_of(other, runs_it), { project = prj })
    lu.assertTrue(r.ok, tostring(r.results[1].reason))
    lu.assertEquals(r.results[1].worker, "runs")
    local log = fs.read(r.results[1].history[1].log)
    if never_first then
      lu.assertStrContains(log, "RasGeomPreprocess")
      lu.assertEquals(fs.read(x), "fake preprocessed geometry\n")
    else
      lu.assertNotStrContains(log, "RasGeomPreprocess")
      lu.assertEquals(fs.read(x), "the project's own preprocessed geometry\n")
    end
    local doc = json.decode(fs.read(d .. "/run/run.json"))
    lu.assertEquals(doc.workers[2].engine.preprocess, runs_it.engine.preprocess)
  end
end

-- A project whose name has dots in it ("Muncie.v2") runs on both engines:
-- the plan is the last ".pNN" of a file name, not what follows the first dot.
function TestSched:test_a_project_name_with_dots_runs_on_both_engines()
  local d = H.tmpdir("dots")
  local prj = rasrun.project.open(H.project(d, { { title = "a", seconds = 0.05 } }, { name = "Muncie.v2" }))
  for _, kind in ipairs({ "linux", "windows" }) do
    local w = rasrun.worker { type = "local", name = kind, engine = { kind = kind, home = H.sim(kind) } }
    local r = run(pool_of(w), { project = prj, force = true, run_dir = d .. "/run-" .. kind })
    lu.assertEquals(r.results[1].status, "ok", kind .. ": " .. tostring(r.results[1].reason))
  end
  lu.assertTrue(fs.isfile(d .. "/Muncie.v2.p01.hdf"))
end

-- A project name near a file name's 255 bytes (228 here, "Rhône" in UTF-8):
-- its result comes back through a temporary name of 255 bytes or fewer, on
-- both engines, and nothing temporary is left beside it.
function TestSched:test_a_project_name_near_the_longest_file_name_runs()
  local d = H.tmpdir("long")
  local name = ("Rhône_crue_"):rep(19)
  lu.assertEquals(#name, 228)
  local prj = rasrun.project.open(H.project(d, { { title = "a", seconds = 0.05 } }, { name = name }))
  for _, kind in ipairs({ "linux", "windows" }) do
    local w = rasrun.worker { type = "local", name = kind, engine = { kind = kind, home = H.sim(kind) } }
    local r = run(pool_of(w), { project = prj, force = true, run_dir = d .. "/run-" .. kind })
    lu.assertEquals(r.results[1].status, "ok", kind .. ": " .. tostring(r.results[1].reason))
  end
  lu.assertTrue(fs.isfile(d .. "/" .. name .. ".p01.hdf"))
  for _, f in ipairs(fs.list(d)) do
    lu.assertFalse(f:find("%.rasrun%-") ~= nil or f:find("%.part$") ~= nil, "left behind: " .. f)
  end
end

function TestSched:test_plans_that_cannot_run_anywhere_fail_at_once()
  local prj, d = project({ { title = "no tmp", seconds = 0.05 }, { title = "fine", seconds = 0.05 } })
  fs.remove(d .. "/Sample.p01.tmp.hdf")
  prj = rasrun.project.open(prj.path)
  local r = run(pool_of(H.local_worker("a", 2)), { project = prj })
  lu.assertEquals(H.result(r, "01").status, "failed")
  lu.assertStrContains(H.result(r, "01").reason,
    "linux engine: the linux engine needs Sample.p01.tmp.hdf (made by HEC-RAS on Windows)")
  lu.assertEquals(H.result(r, "02").status, "ok")
  -- a plan whose own file is missing is said to be so, not blamed on an engine
  fs.remove(d .. "/Sample.p01")
  r = run(pool_of(H.local_worker("a", 2)), { project = rasrun.project.open(prj.path), run_dir = d .. "/run2" })
  lu.assertStrContains(H.result(r, "01").reason, "plan p01 is listed in the project but its file Sample.p01 is missing")
  lu.assertNotStrContains(H.result(r, "01").reason, "engine")
end

function TestSched:test_bad_settings_are_named()
  lu.assertErrorMsgContains("unknown worker type \"bogus\" (known: local, ssh)",
    function() rasrun.worker { type = "bogus" } end)
  lu.assertErrorMsgContains("missing field 'engine'", function() rasrun.worker { type = "local" } end)
  lu.assertErrorMsgContains("missing field 'host'",
    function() rasrun.worker { type = "ssh", engine = { kind = "linux", home = "/x" } } end)
  lu.assertErrorMsgContains("engine.kind must be \"linux\" or \"windows\"",
    function() rasrun.worker { type = "local", engine = { kind = "dos", home = "/x" } } end)
  lu.assertErrorMsgContains("unknown field 'slot' (did you mean 'slots'?)",
    function() rasrun.worker { type = "local", slot = 2, engine = { kind = "linux", home = "/x" } } end)
  lu.assertErrorMsgContains("two workers are named \"x\"",
    function() rasrun.pool { H.local_worker("x"), H.local_worker("x") } end)
  for _, case in ipairs({
    { { tier = "1" }, 'tier must be a whole number >= 0, got "1"' },
    { { tier = -1 }, "tier must be a whole number >= 0, got -1" },
    { { cores_total = 7.5 }, "cores_total must be a whole number >= 1, got 7.5" },
    { { kill_grace = "x" }, 'kill_grace must be a number of seconds >= 0, got "x"' },
    { { name = "" }, 'name must be a non-empty string, got ""' },
    { { slots = "2" }, 'slots must be a whole number from 1 to 1024, got "2"' },
    { { slots = 2 ^ 31 }, "slots must be a whole number from 1 to 1024" },
    { { slots = 5000 }, "slots must be a whole number from 1 to 1024, got 5000" },
    { { workdir = 5 }, "workdir must be a string or false, got 5" },
    { { enabled = "false" }, 'enabled must be true or false, got "false"' },
    { { kill_grace = 0 / 0 }, "kill_grace must be a number of seconds >= 0" },
    { { type = "ssh", name = "node7", host = "h", macs = 5 },
      'rasrun.worker{type="ssh", name="node7"}: macs must be names in order of preference' },
    { { type = "ssh", host = "h", ciphers = { "aes128-ctr", 3 } }, "ciphers must be names in order of preference" },
    { { type = "ssh", host = "h", agent = "yes" }, 'agent must be true or false, got "yes"' },
    { { type = "ssh", host = "h", ssh_config = 5 }, "ssh_config must be a file's path, got 5" },
  }) do
    local cfg = case[1]
    cfg.type, cfg.engine = cfg.type or "local", { kind = "linux", home = "/x" }
    lu.assertErrorMsgContains(case[2], function() rasrun.worker(cfg) end)
  end
  lu.assertErrorMsgContains("rasrun.worker{name=\"n1\"}: missing field 'type' (local, ssh)",
    function() rasrun.worker { name = "n1", engine = { kind = "linux", home = "/x" } } end)
  lu.assertEquals(rasrun.worker { type = "ssh", host = "h", macs = { "hmac-sha2-256" }, ciphers = "aes128-ctr",
                                  engine = { kind = "linux", home = "/x" } }.macs, { "hmac-sha2-256" })
  lu.assertEquals(rasrun.worker { type = "ssh", host = "h", ciphers = { [3] = "c", [2] = "b", [1] = "a" },
                                  engine = { kind = "linux", home = "/x" } }.ciphers, { "a", "b", "c" })
  local w = rasrun.worker { type = "local", cores_total = 16, cores_per_plan = 6,
                            engine = { kind = "linux", home = "/x" } }
  lu.assertEquals(w.slots, 2)
  local prj = project({ { title = "a" } })
  lu.assertErrorMsgContains("unknown option 'retry'",
    function() pool_of(H.local_worker("a")):run { project = prj, retry = 1 } end)
  -- (no project found: nothing runs, and that is said; a list from JSON is a list)
  local none = pool_of(H.local_worker("a")):run { projects = {}, run_dir = prj.dir .. "/none", quiet = true }
  lu.assertEquals(#none.results, 0)
  local listed = pool_of(H.local_worker("a")):run { projects = json.decode(json.encode({ prj.path })),
                                                    run_dir = prj.dir .. "/listed", quiet = true }
  lu.assertEquals(#listed.results, 1)
  lu.assertErrorMsgContains("projects must be a list of projects or .prj paths, got project Sample",
    function() pool_of(H.local_worker("a")):run { projects = prj } end)
  lu.assertErrorMsgContains('projects must be a list of projects or .prj paths, got "x.prj"',
    function() pool_of(H.local_worker("a")):run { projects = "x.prj" } end)
  lu.assertErrorMsgContains("projects[1] is nil (a project that could not be opened?)",
    function() pool_of(H.local_worker("a")):run { projects = { nil, prj } } end)
  lu.assertErrorMsgContains("rasrun.project.open returns nil and a message",
    function() pool_of(H.local_worker("a")):run { project = rasrun.project.open("/nowhere/X.prj") } end)
  for _, list in ipairs({ { { "02", "01" } }, { "01", "02" } }) do
    lu.assertErrorMsgContains('after maps a plan to the plans it waits for, as in after = { ["02"] = { "01" } }; '
      .. "a list reads as plan 01 waiting for itself",
      function() pool_of(H.local_worker("a")):run { project = prj, after = list } end)
  end
  lu.assertErrorMsgContains("plan 02 waits for itself in after",
    function() pool_of(H.local_worker("a")):run { project = prj, after = { ["02"] = { "p2" } } } end)
  lu.assertErrorMsgContains("/nowhere/X.prj: no such project file",
    function() pool_of(H.local_worker("a")):run { project = "/nowhere/X.prj" } end)
  -- rasrun.fail in a plans filter stops the recipe as it says
  local ok, e = pcall(function()
    pool_of(H.local_worker("a")):run { project = prj, plans = function() rasrun.fail("no such storm", 4) end }
  end)
  lu.assertFalse(ok)
  lu.assertEquals({ e.exit_code, e.message }, { 4, "no such storm" })
  lu.assertErrorMsgContains("engine.home (the HEC-RAS install folder) must be a folder's path, got 5",
    function() rasrun.worker { type = "local", engine = { kind = "linux", home = 5 } } end)
  local ssh = { type = "ssh", host = "h", engine = { kind = "linux", home = "/x" } }
  ssh.identity = 5
  lu.assertErrorMsgContains("identity must be a string or false, got 5", function() rasrun.worker(ssh) end)
  ssh.identity, ssh.password_env, ssh.user = false, false, 1001
  lu.assertEquals(rasrun.worker(ssh).identity, false)
  lu.assertErrorMsgContains("no plan p09",
    function() pool_of(H.local_worker("a")):run { project = prj, plans = { "09" } } end)
  for _, case in ipairs({
    { { timeout = 0 / 0 }, "timeout must be a number of seconds > 0" },
    { { timeout = math.huge }, "timeout must be a number of seconds > 0" },
    { { down_grace = -1 }, "down_grace must be a number of seconds >= 0" },
    { { cancel_wait = "5" }, "cancel_wait must be a number of seconds >= 0" },
    { { timeout = 0 }, "timeout must be a number of seconds > 0" },
    { { retries = 1 << 40 }, "retries must be a whole number from 0 to 1000" },
    { { progress = "fancy" }, 'progress must be "auto" (live on a terminal), "plain" or false, got "fancy"' },
    { { check = true }, "check must be a function, a check set (rasrun.checks.standard{...}) or false, got true" },
    { { check = { max_volume_error = 1 } }, "check must be a function, a check set" },
    { { check = rasrun.checks.standard }, "check = rasrun.checks.standard makes checks, and is not one: "
      .. "call it, as in check = rasrun.checks.standard { ... }" },
    { { on_event = "print" }, 'on_event must be a function, got "print"' },
    { { run_dir = 5 }, "run_dir must be a folder's path, got 5" },
    { { resume = 5 }, "resume must be a folder's path, got 5" },
    { { force = "false" }, 'force must be true or false, got "false"' },
    { { quiet = 1 }, "quiet must be true or false, got 1" },
    { { plan = { "01" } }, "unknown option 'plan' (did you mean 'plans'?)" },
    { { "X.prj" }, 'options are named (project = "Sample.prj", plans = {...}): got "X.prj" without a name' },
  }) do
    local opts = case[1]
    opts.project = prj
    lu.assertErrorMsgContains(case[2], function() pool_of(H.local_worker("a")):run(opts) end)
  end
end

-- Two projects of one name, one in a long folder path: its plans' keys
-- name their logs by a start and a hash, within a file name's 255 bytes.
function TestSched:test_a_key_with_a_long_folder_names_short_files()
  local one = project({ { title = "a", seconds = 0.05 } })
  local long = H.tmpdir("long") .. "/" .. ("Flood Study Area 12 - Existing Conditions "):rep(6)
  assert(fs.mkdirs(long))
  H.project(long, { { title = "b", seconds = 0.05 } })
  local r = run(pool_of(H.local_worker("a", 2)), { projects = { one, long .. "/Sample.prj" },
                                                run_dir = one.dir .. "/run" })
  lu.assertTrue(r.ok, tostring(r.results[2].reason))
  local logs = fs.list(one.dir .. "/run/logs")
  lu.assertEquals(#logs, 2)
  for _, n in ipairs(logs) do lu.assertTrue(#n < 200, n) end
end

-- A project listed twice runs once (its plans would race for the same
-- result files); a run folder that cannot be made is said in one line.
function TestSched:test_a_project_listed_twice_runs_once()
  local prj = project({ { title = "a", seconds = 0.05 } })
  local link = H.tmpdir("link") .. "/prj"
  lu.assertEquals(sys.run({ "ln", "-s", prj.dir, link }).code, 0)
  local r = run(pool_of(H.local_worker("a")), { projects = { prj, prj.path, link .. "/Sample.prj" },
                                                run_dir = prj.dir .. "/run" })
  lu.assertTrue(r.ok)
  lu.assertEquals(#r.results, 1)
  lu.assertEquals(r.results[1].key, "Sample/p01")
  local d = H.tmpdir("ro")
  assert(fs.write(d .. "/run", "a file where the run folder would go"))
  lu.assertErrorMsgContains("the run folder; run_dir = ... puts it elsewhere",
    function() pool_of(H.local_worker("a")):run { project = prj, run_dir = d .. "/run/x", force = true } end)
end

-- The maxima check's baseline, when it is not there, stops pool:run before
-- any plan runs, naming the file; one that a plan of the run writes is not
-- looked for.
function TestSched:test_a_missing_baseline_is_said_before_any_plan_runs()
  local prj = project({ { title = "a", seconds = 0 }, { title = "b", seconds = 0 } })
  local pool = pool_of(H.local_worker("a"))
  local missing = prj.dir .. "/Base.p01.hdf"
  local check = rasrun.checks.standard { maxima = { baseline = missing } }
  lu.assertErrorMsgContains("the maxima check's baseline " .. missing ..
    " is not there (no such file, and no plan of this run writes it)",
    function() run(pool, { project = prj, check = check, force = true }) end)
  lu.assertFalse(fs.exists(prj.dir .. "/run")) -- nothing started
  lu.assertFalse(fs.exists(prj.dir .. "/Sample.p01.hdf"))
  -- plan 01's result as the baseline: plan 01 writes it, and plan 02, on a
  -- slot of its own, waits for it to compare with it
  check = rasrun.checks.standard { maxima = { baseline = prj:plan("01"):result_path(), tolerance = 1000 } }
  local r = run(pool_of(H.local_worker("a", 2)), { project = prj, check = check, plans = { "02", "01" } })
  lu.assertTrue(r.ok, tostring(r.results[1].reason) .. "; " .. tostring(r.results[2].reason))
  local by = {}
  for _, res in ipairs(r.results) do by[res.plan] = res end
  local function detail(res)
    for _, c in ipairs(res.checks) do if c.name == "maxima" then return c.detail end end
  end
  lu.assertStrContains(detail(by["01"]), "(this result is the baseline)")
  lu.assertNotStrContains(detail(by["02"]), "baseline")
  lu.assertTrue(by["02"].history[1].started >= by["01"].history[1].ended)
  -- a plan that the one writing the baseline waits for would have none
  os.remove(prj:plan("01"):result_path())
  lu.assertErrorMsgContains("the maxima check's baseline " .. prj:plan("01"):result_path() .. " is not there yet: "
    .. "Sample/p01 writes it, but Sample/p02, which that plan waits for, runs before it",
    function() run(pool, { project = prj, check = check, after = { ["01"] = { "02" } }, run_dir = prj.dir .. "/run3" }) end)
  -- plan 01 failing, plan 02 has nothing to compare with: it does not run
  prj = rasrun.project.open(H.project(prj.dir, { { title = "a", mode = "crash" }, { title = "b", seconds = 0 } }))
  r = run(pool_of(H.local_worker("a", 2)), { project = prj, check = check, force = true, run_dir = prj.dir .. "/run2" })
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertEquals(r.results[2].reason, "not run: it waits for Sample/p01, which failed")
end

function TestSched:test_workers_from_remote_workers_json()
  local d = H.tmpdir("json")
  fs.write(d .. "/RemoteWorkers.json", json.encode({ workers = {
    { name = "Local Compute", worker_type = "local", worker_folder = "C:\\RasRemote",
      queue_priority = 0, cores_total = 8, cores_per_plan = 2, max_parallel_plans = 3,
      ras_exe_path = H.sim("linux") .. "/bin/RasUnsteady", enabled = true, process_priority = "low" },
    { name = "Remote-PC-01", worker_type = "psexec", hostname = "192.168.1.100",
      ras_exe_path = "C:\\Program Files\\HEC\\HEC-RAS\\6.6\\Ras.exe", queue_priority = 1 },
    { name = "node1", worker_type = "ssh", hostname = "node1", username = "ras", password = "s3cret",
      queue_priority = 2, cores_total = 4, cores_per_plan = 4,
      ras_exe_path = "/opt/hecras/6.6/bin/RasUnsteady", remote_path = "/scratch/ras" },
    { name = "off", worker_type = "local", enabled = false },
  } }))
  local workers, skipped = rasrun.workers_from_json(d .. "/RemoteWorkers.json", { quiet = true })
  lu.assertEquals(#workers, 2)
  lu.assertEquals(workers[1].name, "Local Compute")
  lu.assertEquals(workers[1].slots, 3)
  lu.assertEquals(workers[1].tier, 0)
  lu.assertEquals(workers[1].engine.kind, "linux")
  lu.assertEquals(workers[1].engine.home, H.sim("linux"))
  lu.assertEquals(workers[2].type, "ssh")
  lu.assertEquals(workers[2].tier, 2)
  lu.assertEquals(workers[2].user, "ras")
  lu.assertEquals(workers[2].workdir, "/scratch/ras")
  lu.assertNil(workers[2].password)
  lu.assertEquals(os.getenv(workers[2].password_env), "s3cret")
  lu.assertEquals(#skipped, 1)
  lu.assertStrContains(skipped[1], 'worker "Remote-PC-01": worker_type "psexec" is not supported by rasrun yet')
  lu.assertErrorMsgContains("psexec", function()
    rasrun.workers_from_json(d .. "/RemoteWorkers.json", { strict = true })
  end)
  -- bad values are skipped with a message naming the worker and the key
  local sim = H.sim("linux") .. "/bin/RasUnsteady"
  fs.write(d .. "/Bad.json", json.encode({ workers = {
    { name = "zero", worker_type = "local", cores_total = 8, cores_per_plan = 0, ras_exe_path = sim },
    { name = "words", worker_type = "local", cores_total = "eight", ras_exe_path = sim },
    { name = 42, worker_type = "ssh", hostname = "node42", password = "pw", ras_exe_path = sim },
    { name = "tier", worker_type = "local", queue_priority = "high", ras_exe_path = sim },
    "not an object",
    { name = "42", worker_type = "local", ras_exe_path = sim },
    { name = "winexe", worker_type = "local", ras_exe_path = "C:\\HEC\\RasUnsteady.exe" },
    { name = "nobin", worker_type = "local", ras_exe_path = "/opt/hecras/RasUnsteady" },
  } }))
  workers, skipped = rasrun.workers_from_json(d .. "/Bad.json", { quiet = true })
  lu.assertEquals(#workers, 1)
  lu.assertEquals(workers[1].name, "42")
  lu.assertStrContains(skipped[5], 'worker "42": entry 3 has that name too')
  lu.assertStrContains(skipped[1], 'worker "zero": cores_per_plan must be a whole number of at least 1, not 0')
  lu.assertStrContains(skipped[2], 'worker "words": cores_total must be a whole number of at least 1, not "eight"')
  lu.assertStrContains(skipped[3], 'worker "tier": queue_priority must be a whole number of at least 0, not "high"')
  lu.assertStrContains(skipped[4], "entry 5: not a JSON object")
  lu.assertStrContains(skipped[6], "is Windows' RasUnsteady.exe: Windows HEC-RAS runs through Ras.exe")
  lu.assertStrContains(skipped[7], '"/opt/hecras/RasUnsteady" is neither .../Ras.exe nor .../bin/RasUnsteady')
  fs.write(d .. "/Low.json", json.encode({ workers = {
    { name = "low", worker_type = "local", queue_priority = -1, ras_exe_path = sim } } }))
  workers, skipped = rasrun.workers_from_json(d .. "/Low.json", { quiet = true })
  lu.assertStrContains(skipped[1], 'worker "low": queue_priority must be a whole number of at least 0, not -1')
  -- "workers" as an object, not a list: said, naming the file
  fs.write(d .. "/Object.json", '{"workers": {"a": {"name": "a", "worker_type": "local"}}}')
  lu.assertErrorMsgContains(d .. '/Object.json has no "workers" array ("workers" is an object', function()
    rasrun.workers_from_json(d .. "/Object.json")
  end)
end

-- Names that differ only in case or punctuation never share the variable
-- that holds a password: a worker would send another host's password.
function TestSched:test_workers_from_json_keeps_each_password_to_its_worker()
  local d = H.tmpdir("json")
  local sim = H.sim("linux") .. "/bin/RasUnsteady"
  fs.write(d .. "/W.json", json.encode({ workers = {
    { name = "a-b", worker_type = "ssh", hostname = "h1", password = "one", ras_exe_path = sim },
    { name = "a_b", worker_type = "ssh", hostname = "h2", password = "two", ras_exe_path = sim },
    { name = "Node1", worker_type = "ssh", hostname = "h3", password = "three", ras_exe_path = sim },
    { name = "node1", worker_type = "ssh", hostname = "h4", password = "four", ras_exe_path = sim },
  } }))
  local workers = rasrun.workers_from_json(d .. "/W.json", { quiet = true })
  local seen = {}
  for i, want in ipairs({ "one", "two", "three", "four" }) do
    lu.assertEquals(os.getenv(workers[i].password_env), want, workers[i].name)
    lu.assertNil(seen[workers[i].password_env], workers[i].password_env)
    seen[workers[i].password_env] = true
  end
end

function TestSched:test_live_progress_on_a_terminal()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local d = H.tmpdir("tty")
  H.project(d, { { title = "a", seconds = 1.5 }, { title = "b", seconds = 1.5 } })
  -- script(1) gives the run a pseudo-terminal: the live block is drawn there
  local r = sys.run({ "script", "-qefc", H.bin .. " run " .. H.root .. "/tests/recipes/pool_run.lua " .. d .. " 2",
                      "/dev/null" }, { env = { TERM = "xterm", RASRUN_TEST_RUNDIR = d .. "/run",
                                          RASRUN_TEST_PROGRESS = "auto" }, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stdout)
  lu.assertStrContains(r.stdout, "\27[")                     -- the block is redrawn in place
  lu.assertStrMatches(r.stdout, ".*Sample/p01 +here +00:0%d +running.*")
  lu.assertStrContains(r.stdout, "[0/2 done, 0 failed, 2 running")
  lu.assertStrContains(r.stdout, "2 plans: 2 ok, 0 failed")
  -- a small terminal: lines cut to its width, the block to its height
  local d2 = H.tmpdir("tty")
  H.project(d2, { { title = "a", seconds = 1.5 }, { title = "b", seconds = 1.5 },
                  { title = "c", seconds = 1.5 }, { title = "d", seconds = 1.5 } })
  r = sys.run({ "script", "-qefc", "stty cols 40 rows 6; exec " .. H.bin .. " run " .. H.root ..
                "/tests/recipes/pool_run.lua " .. d2 .. " 4", "/dev/null" },
              { env = { TERM = "xterm", RASRUN_TEST_RUNDIR = d2 .. "/run", RASRUN_TEST_PROGRESS = "auto" },
                timeout = 60 })
  lu.assertEquals(r.code, 0, r.stdout)
  lu.assertStrContains(r.stdout, "... and 2 more running")
  for line in r.stdout:gsub("\27%[%d*[AJ]", ""):gsub("\r", ""):gmatch("[^\n]+") do
    if line:find("running", 1, true) then lu.assertTrue(#line <= 39, line) end
  end
end

-- A note before the live block is drawn (a plan's warning) is a line alone.
function TestSched:test_a_warning_before_the_run_on_a_terminal()
  local d = H.tmpdir("tty")
  H.project(d, { { title = "a", seconds = 0.05 } })
  fs.touch(d .. "/Sample.p01", sys.now() + 60) -- the plan changed after its .tmp.hdf was made
  local r = sys.run({ "script", "-qefc", H.bin .. " run " .. H.root .. "/tests/recipes/pool_run.lua " .. d .. " 1",
                      "/dev/null" }, { env = { TERM = "xterm", RASRUN_TEST_RUNDIR = d .. "/run",
                                          RASRUN_TEST_PROGRESS = "auto" }, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stdout)
  lu.assertStrContains(r.stdout, "warning: Sample/p01: Sample.p01 changed after Sample.p01.tmp.hdf was made")
  lu.assertStrContains(r.stdout, "1 plan: 1 ok, 0 failed")
end

-- ---- the controller as a process: signals, kill, resume ---------------------

-- wrap: a command that runs the controller (its argv, before rasrun's), or nil.
local function start_controller(dir, slots, env, wrap)
  local run_dir = dir .. "/run"
  local work = H.tmpdir("work")
  env = env or {}
  env.RASRUN_TEST_RUNDIR, env.RASRUN_TEST_WORKDIR = run_dir, work
  local argv = { table.unpack(wrap or {}) }
  for _, a in ipairs({ H.bin, "run", H.root .. "/tests/recipes/pool_run.lua", dir, tostring(slots) }) do
    argv[#argv + 1] = a
  end
  local pid = assert(H.spawn(argv, { env = env, stdout = dir .. "/out.txt", stderr = dir .. "/err.txt" }))
  return pid, run_dir, work
end

local function journal_count(run_dir, ev, job)
  local ok, entries = pcall(H.journal, run_dir)
  if not ok then return 0 end
  local n = 0
  for _, e in ipairs(entries) do
    if e.ev == ev and (not job or e.job == job) then n = n + 1 end
  end
  return n
end

function TestSched:test_sigint_stops_every_engine_and_cleans_up()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local _, d = project({ { title = "long", seconds = 30 }, { title = "hang", mode = "hang" },
                         { title = "queued", seconds = 30 } })
  local pid, run_dir, work = start_controller(d, 2)
  H.wait_for(function() return journal_count(run_dir, "launched") == 2 end, 20, "two engines")
  -- the hang mode adds a helper in its own session
  H.wait_for(function() return #engines_alive() == 3 end, 10, "three engine processes")
  sys.kill(pid, "INT")
  local code = sys.wait(pid, 30)
  lu.assertEquals(code, 130)
  lu.assertEquals(engines_alive(), {})
  lu.assertEquals(fs.list(work), {}) -- work folders removed
  local entries = H.journal(run_dir)
  lu.assertEquals(entries[#entries].ev, "run_end")
  lu.assertTrue(fs.isfile(run_dir .. "/report.html"))
  local err = H.read(d .. "/err.txt")
  lu.assertStrContains(err, "interrupted (Interrupt)")
  lu.assertStrContains(err, "3 cancelled")
  lu.assertFalse(fs.exists(d .. "/Sample.p01.hdf"))
end

-- A recipe that catches what stopped an interrupted run (pcall) and goes on
-- runs nothing more, and rasrun still exits as the signal says.
function TestSched:test_a_recipe_that_catches_ctrl_c_runs_nothing_more()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local _, d = project({ { title = "long", seconds = 30 }, { title = "also long", seconds = 30 } })
  local pid, run_dir = start_controller(d, 2, { RASRUN_TEST_AGAIN = "1" })
  H.wait_for(function() return journal_count(run_dir, "launched") == 2 end, 20, "two engines")
  sys.kill(pid, "INT")
  lu.assertEquals(sys.wait(pid, 30), 130)
  lu.assertEquals(engines_alive(), {})
  lu.assertFalse(fs.exists(run_dir .. "-again"))
  lu.assertStrContains(H.read(d .. "/out.txt"), "finished again\tfalse")
  lu.assertStrContains(H.read(d .. "/out.txt"), "not run: Ctrl-C interrupted an earlier run of the recipe")
end

-- keep_scratch keeps the work folder of an attempt that failed, for a look
-- at what the engine left; the attempts Ctrl-C cancelled leave nothing.
function TestSched:test_keep_scratch_keeps_failed_attempts_not_cancelled_ones()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local _, d = project({ { title = "crashes", mode = "crash" }, { title = "long", seconds = 30 },
                         { title = "also long", seconds = 30 } })
  local pid, run_dir, work = start_controller(d, 2, { RASRUN_TEST_KEEP = "1" })
  H.wait_for(function() return journal_count(run_dir, "done") == 1 and journal_count(run_dir, "launched") == 3 end,
    20, "the crash and two engines running")
  sys.kill(pid, "INT")
  lu.assertEquals(sys.wait(pid, 30), 130)
  lu.assertEquals(engines_alive(), {})
  local run_id = H.journal(run_dir)[1].run_id
  lu.assertEquals(fs.list(work), { run_id })
  lu.assertEquals(fs.list(work .. "/" .. run_id), { "Sample_p01-a1" })
  lu.assertTrue(fs.isfile(work .. "/" .. run_id .. "/Sample_p01-a1/Sample.b01"))
  -- the attempt's reason says where
  local reason
  for _, e in ipairs(H.journal(run_dir)) do
    if e.ev == "attempt_end" and e.job == "Sample/p01" then reason = e.reason end
  end
  lu.assertStrContains(reason, "(work folder kept in " .. work .. "/" .. run_id .. "/Sample_p01-a1)")
end

-- A hangup (the terminal closed, the SSH session dropped) or Ctrl-\\ stops
-- the run as Ctrl-C does: without it the controller would die at once (with
-- a core dump for SIGQUIT) and leave its engines, in process groups of their
-- own, running.
local function stopped_by(signal, code, name)
  local _, d = project({ { title = "long", seconds = 30 }, { title = "also long", seconds = 30 } })
  local pid, run_dir, work = start_controller(d, 2)
  H.wait_for(function() return journal_count(run_dir, "launched") == 2 end, 20, "two engines")
  sys.kill(pid, signal)
  lu.assertEquals(sys.wait(pid, 30), code)
  lu.assertEquals(engines_alive(), {})
  lu.assertEquals(fs.list(work), {})
  lu.assertEquals(H.journal(run_dir)[#H.journal(run_dir)].ev, "run_end")
  local err = H.read(d .. "/err.txt")
  lu.assertStrContains(err, "interrupted (" .. name .. ")")
  lu.assertStrContains(err, "2 cancelled")
end

function TestSched:test_a_hangup_stops_every_engine_and_cleans_up()
  stopped_by("HUP", 129, "Hangup")
end

function TestSched:test_ctrl_backslash_stops_every_engine_and_cleans_up()
  stopped_by("QUIT", 131, "Quit")
end

-- `rasrun run ... | tee log`: Ctrl-C ends tee as well, and the progress
-- lines that follow go into a closed pipe. The run still stops its engines
-- and writes its journal and reports (SIGPIPE killed it on the next line).
function TestSched:test_a_closed_output_pipe_does_not_kill_the_run()
  local _, d = project({ { title = "long", seconds = 30 }, { title = "also long", seconds = 30 } })
  local pid, run_dir = start_controller(d, 2, nil, { "sh", "-c", '"$@" 2>&1 | head -c 1 >/dev/null', "sh" })
  H.wait_for(function() return journal_count(run_dir, "launched") == 2 end, 20, "two engines")
  local controller = H.journal(run_dir)[1].pid
  sys.kill(controller, "TERM")
  lu.assertEquals(sys.wait(pid, 30), 0) -- the pipeline's status: head's
  lu.assertEquals(engines_alive(), {})
  local entries = H.journal(run_dir)
  lu.assertEquals(entries[#entries].ev, "run_end")
  lu.assertTrue(fs.isfile(run_dir .. "/report.html"))
end

-- Where pidfd_open is missing (kernels before 5.3; tests/nopidfd makes it
-- fail as they do), plans still run: rasrun says once that it looks for
-- engines' ends at its tick, a finished plan comes back, and Ctrl-C still
-- stops every engine (a hang with its helper too) and cleans up.
function TestSched:test_without_pidfd_open_plans_run_and_ctrl_c_stops_them()
  local _, d = project({ { title = "quick", seconds = 0.2 }, { title = "long", seconds = 30 },
                         { title = "hang", mode = "hang" } })
  local pid, run_dir, work = start_controller(d, 2, nil, { H.root .. "/build/nopidfd" })
  H.wait_for(function() return journal_count(run_dir, "done", "Sample/p01") == 1 end, 20, "plan 01 done")
  H.wait_for(function() return journal_count(run_dir, "launched") == 3 end, 20, "three engines")
  H.wait_for(function() return #engines_alive() == 3 end, 10, "the long engine, the hang and its helper")
  sys.kill(pid, "INT")
  lu.assertEquals(sys.wait(pid, 30), 130)
  lu.assertEquals(engines_alive(), {})
  lu.assertEquals(fs.list(work), {})
  local err = H.read(d .. "/err.txt")
  lu.assertStrContains(err, "here: pidfd_open: Function not implemented: engine ends are looked for "
    .. "every 0.1 s instead")
  lu.assertStrContains(err, "1 ok, 0 failed, 0 skipped, 2 cancelled")
  lu.assertTrue(fs.isfile(d .. "/Sample.p01.hdf"))
end

-- An engine's start reaches the scheduler after the spawn (spawner.h); a
-- Ctrl-C that lands in between still stops the engines once they are up.
function TestSched:test_sigint_while_engines_start_stops_them()
  local workdir = H.tmpdir("work")
  local prj = project({ { title = "a", seconds = 30 }, { title = "b", seconds = 30 } })
  local sent = false
  local t0 = sys.monotonic()
  local ok, e = pcall(run, pool_of(H.local_worker("here", 2, { workdir = workdir })), {
    project = prj,
    on_event = function(ev)
      if ev.type == "start" and not sent then
        sent = true
        sys.kill(sys.pid(), "INT")
      end
    end })
  lu.assertFalse(ok)
  lu.assertEquals(e.exit_code, 130) -- everything written, then the recipe stops
  lu.assertTrue(sent)
  lu.assertTrue(sys.monotonic() - t0 < 20, "the engines were not stopped")
  local doc = json.decode(H.read(prj.dir .. "/run/run.json"))
  lu.assertEquals(#doc.plans, 2)
  for _, p in ipairs(doc.plans) do lu.assertEquals(p.status, "cancelled") end
  lu.assertEquals(engines_alive(), {})
  lu.assertEquals(fs.list(workdir), {})
end

-- Ctrl-C while a timed-out engine is given its grace (it ignores SIGTERM):
-- the kill comes when the timeout set it, not a whole grace after the Ctrl-C.
function TestSched:test_ctrl_c_during_a_timeouts_grace_does_not_postpone_the_kill()
  local prj = project({ { title = "hangs", mode = "hang" } })
  local sender
  local t0 = sys.monotonic()
  local ok, e = pcall(run, pool_of(H.local_worker("here", 1, { kill_grace = 4 })), {
    project = prj, timeout = 1, retries = 1,
    on_event = function(ev)
      if ev.type == "launched" and not sender then
        sender = assert(H.spawn({ "sh", "-c", "sleep 3; kill -INT " .. sys.pid() }))
      end
    end })
  local took = sys.monotonic() - t0
  if sender then sys.wait(sender, 10) end
  lu.assertFalse(ok)
  lu.assertEquals(e.exit_code, 130)
  -- the timeout at 1 s, its SIGKILL 4 s later; the Ctrl-C at 3 s would have
  -- moved that to 7 s
  lu.assertTrue(took < 6.3, ("the run took %.1f s"):format(took))
  H.wait_for(function() return #engines_alive() == 0 end, 5, "the hung engine to be gone")
  -- its one retry was due: the plan is cancelled, not failed, and a resume runs it
  local plan = json.decode(H.read(prj.dir .. "/run/run.json")).plans[1]
  lu.assertEquals(plan.status, "cancelled")
  lu.assertStrContains(plan.reason, "cancelled while it waited for attempt 2 (attempt 1: timed out after 1 s")
end

-- A plan that crashes and one that runs long, on slots slots, with one
-- retry, interrupted (a SIGINT to itself) by the handler on event ev: the
-- run stops with 130, its plan 01 cancelled with the reason its attempt
-- failed. Returns the project.
local function stopped_on(ev, slots)
  local prj = project({ { title = "crash", mode = "crash", seconds = 0.05 }, { title = "long", seconds = 30 } })
  local ok, e = pcall(run, pool_of(H.local_worker("here", slots)), { project = prj, retries = 1,
    on_event = function(event)
      if event.type == ev then sys.kill(sys.pid(), "INT") end
    end })
  lu.assertFalse(ok)
  lu.assertEquals(e.exit_code, 130)
  local doc = json.decode(H.read(prj.dir .. "/run/run.json"))
  lu.assertEquals(doc.plans[1].status, "cancelled")
  lu.assertEquals(doc.plans[1].attempts, 1)
  lu.assertStrContains(doc.plans[1].reason, "cancelled while it waited for attempt 2 (attempt 1: the engine exited with code")
  lu.assertStrContains(H.read(prj.dir .. "/run/report.html"), ", interrupted by Ctrl-C.") -- not "signal 2"
  lu.assertEquals(doc.interrupted, "SIGINT")
  lu.assertEquals(engines_alive(), {})
  return prj
end

-- A plan whose retry was still waiting for a slot when the run was
-- interrupted keeps the reason its attempt failed.
function TestSched:test_a_retry_cancelled_before_it_starts_keeps_the_failure()
  -- one slot: the crashed plan's slot goes to the next plan before its check
  -- says it failed, so its retry waits
  stopped_on("retry", 1)
end

-- A handler that stops the run (a SIGINT to itself) when an attempt fails
-- stops it there: the retry that was due is not announced, nor started on
-- the slot that is free, and the plan keeps the reason its attempt failed.
function TestSched:test_a_handler_that_stops_the_run_starts_no_retry()
  local prj = stopped_on("attempt_failed", 2)
  local launched, retries = 0, 0
  for _, ev in ipairs(H.journal(prj.dir .. "/run")) do
    if ev.ev == "launched" and ev.plan == "01" then launched = launched + 1 end
    if ev.ev == "retry" then retries = retries + 1 end
  end
  lu.assertEquals({ launched, retries }, { 1, 0 })
end

-- rasrun.fail in on_event stops the run as Ctrl-C does: the running engines
-- are stopped, the plans not done cancelled with its message, the reports
-- and journal written; then pool:run raises it, with its status. A resume
-- runs what it cancelled and keeps what was done.
function TestSched:test_rasrun_fail_in_on_event_stops_the_run()
  local prj = project({ { title = "quick", seconds = 0.05 }, { title = "long", seconds = 30 },
                        { title = "later", seconds = 0.05 } })
  local t0 = sys.monotonic()
  local ok, e = pcall(run, pool_of(H.local_worker("here", 2)), { project = prj,
    on_event = function(ev)
      if ev.type == "done" and ev.status == "ok" then rasrun.fail("enough after " .. ev.job, 3) end
    end })
  lu.assertFalse(ok)
  lu.assertTrue(require("rasrun.runtime").is_stop(e), tostring(e))
  lu.assertEquals({ e.exit_code, e.message }, { 3, "enough after Sample/p01" })
  lu.assertTrue(sys.monotonic() - t0 < 15, "the 30 s engine was not stopped")
  lu.assertEquals(engines_alive(), {})
  local doc = json.decode(H.read(prj.dir .. "/run/run.json"))
  lu.assertEquals(doc.stopped, "enough after Sample/p01")
  lu.assertNil(doc.interrupted)
  lu.assertEquals(doc.plans[1].status, "ok")
  for i = 2, 3 do
    lu.assertEquals(doc.plans[i].status, "cancelled")
    lu.assertStrContains(doc.plans[i].reason, "stopped by the recipe: enough after Sample/p01")
  end
  lu.assertStrContains(H.read(prj.dir .. "/run/report.html"), ", stopped by the recipe: enough after Sample/p01.")
  local j = H.journal(prj.dir .. "/run")
  lu.assertEquals(j[#j].ev, "run_end")
  lu.assertEquals(j[#j].stopped, "enough after Sample/p01")
  -- the resume runs the two it cancelled, not the one done
  sys.setenv("FAKE_RAS_SECONDS", "0.05")
  local rok, r = pcall(run, pool_of(H.local_worker("here", 2)), { project = prj, resume = prj.dir .. "/run" })
  sys.setenv("FAKE_RAS_SECONDS", nil)
  lu.assertTrue(rok, tostring(r))
  lu.assertTrue(r.ok, tostring(r))
  lu.assertEquals({ H.result(r, "01").attempts, H.result(r, "02").attempts, H.result(r, "03").attempts }, { 1, 2, 2 })
end

-- rasrun.fail in a check stops the run too: that attempt is cancelled as
-- the others are (with retries or without), its retry is not started, and
-- a resume runs it.
function TestSched:test_rasrun_fail_in_a_check_stops_the_run()
  for _, retries in ipairs({ 0, 2 }) do
    local prj = project({ { title = "a", seconds = 0.05 }, { title = "long", seconds = 30 } })
    local ok, e = pcall(run, pool_of(H.local_worker("here", 2)), { project = prj, retries = retries,
      check = function(_, _, plan)
        if plan == "01" then rasrun.fail("the volume is off", 4) end
        return true
      end })
    lu.assertFalse(ok)
    lu.assertEquals({ e.exit_code, e.message }, { 4, "the volume is off" })
    lu.assertEquals(engines_alive(), {})
    local doc = json.decode(H.read(prj.dir .. "/run/run.json"))
    lu.assertEquals({ doc.plans[1].status, doc.plans[1].attempts }, { "cancelled", 1 })
    lu.assertStrContains(doc.plans[1].reason, "the check stopped the run: the volume is off")
    lu.assertEquals(doc.plans[2].status, "cancelled")
    lu.assertStrContains(doc.plans[2].reason, "stopped by the recipe: the volume is off")
    sys.setenv("FAKE_RAS_SECONDS", "0.05")
    local rok, r = pcall(run, pool_of(H.local_worker("here", 2)), { project = prj, retries = retries,
      resume = prj.dir .. "/run" })
    sys.setenv("FAKE_RAS_SECONDS", nil)
    lu.assertTrue(rok, tostring(r))
    lu.assertTrue(r.ok, tostring(r))
    lu.assertEquals(H.result(r, "01").attempts, 2)
  end
end

-- rasrun.fail in a check that decides whether a plan is up to date (before
-- anything runs) stops the recipe there: the plan does not run.
function TestSched:test_rasrun_fail_in_an_up_to_date_check_stops_the_recipe()
  local prj = project({ { title = "a", seconds = 0.05 } })
  lu.assertTrue(run(pool_of(H.local_worker("here", 1)), { project = prj }).ok)
  local ok, e = pcall(run, pool_of(H.local_worker("here", 1)), { project = prj, run_dir = prj.dir .. "/run2",
    check = function() rasrun.fail("no baseline", 5) end })
  lu.assertFalse(ok)
  lu.assertEquals({ e.exit_code, e.message }, { 5, "no baseline" })
  lu.assertFalse(fs.exists(prj.dir .. "/run2/journal.jsonl"))
end

-- A check that raises on a plan's existing result (here: it reads
-- ctx.worker, which the up-to-date call has not) has the plan run again,
-- and says so, not silently.
function TestSched:test_a_check_raising_on_an_existing_result_is_told()
  local d = H.tmpdir("raise")
  H.project(d, { { title = "a", seconds = 0.05 } })
  local recipe = d .. "/r.lua"
  fs.write(recipe, table.concat({
    'local rasrun = require "rasrun"',
    ('local pool = rasrun.pool { rasrun.worker { type = "local", name = "w", engine = { kind = "linux", home = %q } } }')
      :format(H.sim()),
    ('local run = pool:run { project = %q, progress = "plain", check = function(_, ctx) return true, "on " .. ctx.worker end }')
      :format(d .. "/Sample.prj"),
    'return run.ok and 0 or 1', "" }, "\n"))
  local r = H.rasrun({ "run", recipe })
  lu.assertEquals(r.code, 0, r.stderr)
  r = H.rasrun({ "run", recipe })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "warning: Sample/p01: the check raised an error on its existing result, so it runs again: ")
  lu.assertStrContains(r.stderr, "attempt to concatenate a nil value (field 'worker')")
  -- an error object is told by its message, as the scheduler tells it
  fs.write(recipe, (H.read(recipe):gsub('return true, "on " .. ctx.worker', 'error({ message = "no baseline file" })')))
  r = H.rasrun({ "run", recipe })
  lu.assertStrContains(r.stderr, "so it runs again: no baseline file")
end

-- A signal stands over a stop of the recipe's, before or after it: the run
-- ends as the signal says (exit 130, run.json's interrupted), not as the
-- rasrun.fail a handler raised while the engines were being stopped.
function TestSched:test_a_signal_stands_over_the_recipes_stop()
  for _, first in ipairs({ "signal", "fail" }) do
    local prj = project({ { title = "quick", seconds = 0.05 }, { title = "long", seconds = 30 } })
    local ok, e = pcall(run, pool_of(H.local_worker("here", 2)), { project = prj, on_event = function(ev)
      if ev.type == "done" and ev.plan == "01" then
        if first == "signal" then sys.kill(sys.pid(), "INT") else rasrun.fail("enough") end
      elseif ev.type == "interrupted" then
        if first == "signal" then rasrun.fail("enough") else sys.kill(sys.pid(), "INT") end
      end
    end })
    lu.assertFalse(ok)
    lu.assertEquals(e.exit_code, 130, first .. ": " .. tostring(e))
    local doc = json.decode(H.read(prj.dir .. "/run/run.json"))
    lu.assertEquals(doc.interrupted, "SIGINT", first)
    lu.assertEquals(engines_alive(), {})
    -- the recipe that caught it runs nothing more
    local again, e2 = pcall(run, pool_of(H.local_worker("here", 2)), { project = prj, run_dir = prj.dir .. "/run2" })
    lu.assertFalse(again)
    lu.assertStrContains(tostring(e2), "not run: Ctrl-C interrupted an earlier run of the recipe")
    runtime.interrupted = nil -- (each test is a recipe of its own: tests/run.lua)
  end
end

-- A stop asked for by a start event's handler is taken before the next
-- engine starts, not after every free slot has got one.
function TestSched:test_a_stop_in_a_start_handler_starts_nothing_more()
  local prj = project({ { title = "a", seconds = 30 }, { title = "b", seconds = 30 },
                        { title = "c", seconds = 30 }, { title = "d", seconds = 30 } })
  local t0 = sys.monotonic()
  local ok = pcall(run, pool_of(H.local_worker("here", 4, { kill_grace = 5 })), { project = prj,
    on_event = function(ev)
      if ev.type == "start" then rasrun.fail("one is enough") end
    end })
  lu.assertFalse(ok)
  local starts, launched = 0, 0
  for _, ev in ipairs(H.journal(prj.dir .. "/run")) do
    if ev.ev == "attempt" then starts = starts + 1 end
    if ev.ev == "launched" then launched = launched + 1 end
  end
  -- not even that one's engine: nothing to stop, no grace to wait
  lu.assertEquals({ starts, launched }, { 1, 0 })
  lu.assertTrue(sys.monotonic() - t0 < 4)
  lu.assertEquals(engines_alive(), {})
end

-- A stop's long message, cut to fit, is cut between two characters: the
-- journal and the reports keep valid UTF-8 (not mojibake).
function TestSched:test_a_long_stop_message_is_cut_between_characters()
  local prj = project({ { title = "quick", seconds = 0.05 }, { title = "long", seconds = 30 } })
  local msg = ("é"):rep(400)
  local ok = pcall(run, pool_of(H.local_worker("here", 2)), { project = prj, on_event = function(ev)
    if ev.type == "done" and ev.plan == "01" then rasrun.fail(msg) end
  end })
  lu.assertFalse(ok)
  for _, ev in ipairs(H.journal(prj.dir .. "/run")) do
    if ev.reason then lu.assertNotNil(utf8.len(ev.reason), ev.ev .. ": " .. ev.reason) end
  end
  local doc = json.decode(H.read(prj.dir .. "/run/run.json"))
  lu.assertStrContains(doc.plans[2].reason, "stopped by the recipe: éé")
  lu.assertNil(doc.plans[2].reason:find("Ã", 1, true))
  -- nor a check's long error
  prj = project({ { title = "a", seconds = 0.05 } })
  local r = run(pool_of(H.local_worker("here", 1)), { project = prj,
    check = function() error("x" .. msg, 0) end })
  lu.assertStrContains(r.results[1].reason, "the check raised an error: xéé")
  for _, ev in ipairs(H.journal(prj.dir .. "/run")) do
    if ev.reason then lu.assertNotNil(utf8.len(ev.reason), ev.ev .. ": " .. ev.reason) end
  end
  -- and a short Windows-1252 message is not cut at all (it ends in a byte
  -- that looks like the start of a UTF-8 character)
  prj = project({ { title = "quick", seconds = 0.05 }, { title = "long", seconds = 30 } })
  pcall(run, pool_of(H.local_worker("here", 2)), { project = prj, on_event = function(ev)
    if ev.type == "done" and ev.plan == "01" then rasrun.fail("no baseline for Sc\233nario modifi\233") end
  end })
  doc = json.decode(H.read(prj.dir .. "/run/run.json"))
  lu.assertStrContains(doc.plans[2].reason, "stopped by the recipe: no baseline for Scénario modifié)")
end

-- A stop of the recipe's and then one Ctrl-C (in either order) stop the
-- engines with their grace, as one Ctrl-C does; only a second signal
-- forces them at once.
function TestSched:test_a_stop_and_one_signal_keep_the_grace()
  -- two plans whose checks run in one batch: the signal is read between
  -- them, before the stop the first check asked for is taken
  local prj = project({ { title = "a", seconds = 0.3 }, { title = "b", seconds = 0.3 },
                        { title = "hangs", mode = "hang" } })
  local t0, stopped = sys.monotonic(), false
  local ok, e = pcall(run, pool_of(H.local_worker("here", 3, { kill_grace = 2 })), { project = prj,
    check = function()
      if not stopped then
        stopped = true
        sys.kill(sys.pid(), "INT")
        rasrun.fail("enough")
      end
      return true
    end })
  lu.assertFalse(ok)
  lu.assertEquals(e.exit_code, 130)
  lu.assertTrue(sys.monotonic() - t0 >= 1.8, "the engine was killed without its grace")
  lu.assertEquals(engines_alive(), {})
end

-- A report table whose metamethods raise (a strict table) is read raw by
-- the scheduler: the run goes on (it used to unwind the run, leaving its
-- engines running).
function TestSched:test_a_strict_report_table_does_not_unwind_the_run()
  local prj = project({ { title = "a", seconds = 0.05 }, { title = "b", seconds = 0.3 } })
  local strict = { __index = function(_, k) error("strict table: no field " .. tostring(k)) end }
  local r = run(pool_of(H.local_worker("here", 2)), { project = prj, check = function()
    return setmetatable({ ok = true, reason = "fine", checks = {} }, strict)
  end })
  lu.assertTrue(r.ok, tostring(r))
  lu.assertEquals(engines_alive(), {})
end

-- The loop moves to the core an engine left, to start the next one there
-- (affinity.h); neither that engine nor the controller keeps the pin, also
-- when no engine follows.
function TestSched:test_engines_and_the_controller_keep_every_core()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  if sys.ncpu() < 2 then lu.skip("one core: nothing to pin") end
  local function cores(pid)
    return H.read("/proc/" .. pid .. "/status"):match("Cpus_allowed_list:%s*(%S+)")
  end
  local all = cores(sys.pid())
  for _, case in ipairs({
    { slots = 1, plans = { { title = "quick", seconds = 0 }, { title = "long", seconds = 30 } } },
    { slots = 2, plans = { { title = "long", seconds = 30 }, { title = "quick", seconds = 0 } } },
  }) do
    local _, d = project(case.plans)
    local pid, run_dir = start_controller(d, case.slots)
    H.wait_for(function() return journal_count(run_dir, "done") == 1 end, 20, "the quick plan")
    H.wait_for(function() return journal_count(run_dir, "launched") == 2 end, 20, "the long plan")
    local engines = engines_alive()
    lu.assertEquals(#engines, 1)
    lu.assertEquals(cores(engines[1]), all, "the engine")
    sys.sleep(0.3) -- the loop's next turn
    lu.assertEquals(cores(pid), all, "the controller")
    sys.kill(pid, "INT")
    lu.assertEquals(sys.wait(pid, 30), 130)
  end
end

-- Programs the recipe starts from its check or on_event get every core,
-- also when the loop is pinned to the core the last engine left.
function TestSched:test_programs_a_recipe_starts_keep_every_core()
  if sys.ncpu() < 2 then lu.skip("one core: nothing to pin") end
  local function cores()
    local r = assert(sys.run({ "sh", "-c", "grep Cpus_allowed_list /proc/self/status" }, { timeout = 10 }))
    return r.stdout:match("Cpus_allowed_list:%s*(%S+)")
  end
  local all = cores()
  local prj = project({ { title = "quick", seconds = 0 } })
  local seen = {}
  local r = run(pool_of(H.local_worker("a", 1)), { project = prj,
    check = function() seen.check = cores() return true, "looked" end,
    on_event = function(ev) if ev.type == "done" then seen.done = cores() end end })
  lu.assertTrue(r.ok, tostring(r.results[1].reason))
  lu.assertEquals(seen, { check = all, done = all })
end

-- When the engine that ended shared its core with another engine, the next
-- one starts on a core no engine is on, not behind the running one: here
-- both engines are held on core 0 (taskset), and the fake engine says where
-- the next one started. The engine gets every core back once it has exec'd,
-- before its main() looks: a busy core 1 (another process) can move it to 0
-- by then. Up to three tries, then: a rasrun that starts it on core 0 fails
-- all three.
local function core_of_the_engine_after_a_shared_core()
  local _, d = project({ { title = "long", seconds = 30 }, { title = "ends", seconds = 2 },
                         { title = "next", seconds = 0.05 } })
  local pid, run_dir = start_controller(d, 2, { FAKE_RAS_SHOW_CPU = "1" })
  H.wait_for(function() return journal_count(run_dir, "launched") == 2 end, 20, "two engines")
  local engines = engines_alive()
  lu.assertEquals(#engines, 2)
  for _, e in ipairs(engines) do
    local r = sys.run({ "taskset", "-p", "-c", "0", tostring(e) }, { timeout = 10 })
    lu.assertEquals(r.code, 0, r.stderr)
    -- a sleeping process moves when it next runs: make it run now
    sys.kill(e, "STOP")
    sys.kill(e, "CONT")
  end
  H.wait_for(function() return journal_count(run_dir, "done") == 2 end, 20, "the plan after the one that ended")
  local log = H.read(run_dir .. "/logs/Sample_p03-a1.log")
  local cpu = tonumber(log:match("started on cpu (%d+)"))
  lu.assertNotNil(cpu, log)
  sys.kill(pid, "INT")
  lu.assertEquals(sys.wait(pid, 30), 130)
  return cpu
end

function TestSched:test_the_next_engine_starts_on_a_core_no_engine_is_on()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local allowed = H.read("/proc/self/status"):match("Cpus_allowed_list:%s*(%S+)")
  if sys.ncpu() < 2 or not (allowed == "0-" .. (sys.ncpu() - 1)) then
    lu.skip("needs cores 0 and 1 and every other core allowed, not " .. tostring(allowed))
  end
  local cores = {}
  for try = 1, 3 do
    cores[try] = core_of_the_engine_after_a_shared_core()
    if cores[try] ~= 0 then return end
  end
  lu.fail("started behind the long engine, on its core, in three tries of three")
end

-- The loop, pinned to the core it starts an engine on (affinity.h), is not
-- held there while it waits for the engine to exec (proc_spawn.c): woken
-- there, it could only run behind the new engine. strace holds each exec
-- of the controller's children up for 0.3 s; meanwhile the test reads the
-- cores of the child (pinned where it starts) and of the loop.
function TestSched:test_the_loop_is_not_held_on_the_core_of_the_engine_it_starts()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local allowed = H.read("/proc/self/status"):match("Cpus_allowed_list:%s*(%S+)")
  if sys.ncpu() < 2 or allowed:match("^%d+$") then
    lu.skip("one core allowed (" .. allowed .. "): nothing to pin")
  end
  if sys.run({ "sh", "-c", "command -v strace" }, { timeout = 10 }).code ~= 0 then lu.skip("needs strace") end
  local _, d = project({ { title = "a", seconds = 0.2 }, { title = "b", seconds = 0.2 },
                         { title = "c", seconds = 0.2 }, { title = "d", seconds = 0.2 } })
  -- (LeakSanitizer, in a sanitized build, cannot work under ptrace)
  local env = { ASAN_OPTIONS = (os.getenv("ASAN_OPTIONS") or "") .. ":detect_leaks=0" }
  local pid, run_dir = start_controller(d, 2, env, { "strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=execve",
                                                    "-e", "inject=execve:delay_enter=300000" })
  local function stat(p) -- comm, ppid
    local s = fs.read("/proc/" .. p .. "/stat")
    local comm, ppid = (s or ""):match("^%d+ %((.*)%) %S+ (%d+)")
    return comm, tonumber(ppid)
  end
  local function cores(p) return (fs.read("/proc/" .. p .. "/status") or ""):match("Cpus_allowed_list:%s*(%S+)") end
  local controller, seen, held = nil, 0, {}
  H.wait_for(function()
    local procs = {}
    for _, name in ipairs(fs.list("/proc")) do
      if name:match("^%d+$") then procs[#procs + 1] = tonumber(name) end
    end
    for _, p in ipairs(procs) do
      local comm, ppid = stat(p)
      if not controller and ppid == pid and comm == "rasrun" then controller = p end
    end
    for _, p in ipairs(controller and procs or {}) do
      local comm, ppid = stat(p)
      local child, loop = cores(p), cores(controller)
      -- a child not exec'd yet (it has rasrun's name), started pinned
      if ppid == controller and comm == "rasrun" and child and child:match("^%d+$") and loop then
        seen = seen + 1
        if loop == child then held[#held + 1] = "the loop held on core " .. child end
      end
    end
    return journal_count(run_dir, "done") == 4
  end, 60, "the four plans")
  lu.assertEquals(sys.wait(pid, 30), 0, H.read(d .. "/err.txt"))
  lu.assertTrue(seen > 0, "no engine seen starting on the core another one left")
  lu.assertEquals(held, {})
end

-- A program named without a slash is looked for on PATH as posix_spawnp
-- looks (proc_spawn.c searches itself): past folders that do not hold it, or
-- hold a file of that name that cannot be run; a script without "#!" is
-- refused, not run through sh; a program found nowhere is named.
function TestSched:test_programs_are_found_on_path_as_posix_spawnp_finds_them()
  local d = H.tmpdir("path")
  local function script(p, text, mode)
    for _, sub in ipairs({ "a", "b", "c" }) do fs.mkdirs(d .. "/" .. sub) end
    local f = assert(io.open(d .. "/" .. p, "w"))
    f:write(text)
    f:close()
    lu.assertEquals(sys.run({ "chmod", mode, d .. "/" .. p }, { timeout = 10 }).code, 0)
  end
  script("a/prog", "#!/bin/sh\necho a\n", "644")
  script("b/prog", '#!/bin/sh\necho b "$@"\n', "755")
  script("a/denied", "#!/bin/sh\necho denied\n", "644")
  script("c/plain", "echo plain\n", "755")
  local old = os.getenv("PATH")
  sys.setenv("PATH", table.concat({ d .. "/missing", d .. "/a", d .. "/b", d .. "/c", old }, ":"))
  local ok, err = pcall(function()
    local r = assert(sys.run({ "prog", "x" }, { timeout = 10 }))
    lu.assertEquals(r.stdout, "b x\n")
    local none, why = sys.run({ "plain" }, { timeout = 10 })
    lu.assertNil(none)
    lu.assertStrContains(why, "cannot start plain: Exec format error")
    none, why = sys.run({ "denied" }, { timeout = 10 })
    lu.assertNil(none)
    lu.assertStrContains(why, "cannot start denied: Permission denied")
    none, why = sys.run({ "no-such-program-here" }, { timeout = 10 })
    lu.assertNil(none)
    lu.assertStrContains(why, "cannot start no-such-program-here: No such file or directory")
  end)
  sys.setenv("PATH", old)
  assert(ok, err)
end

-- Helper threads started while the loop is pinned to one core get every
-- core too: here the one that empties replaced results, started at the
-- first commit, which comes when no engine follows (the loop still pinned).
function TestSched:test_helper_threads_keep_every_core()
  if sys.ncpu() < 2 then lu.skip("one core: nothing to pin") end
  local function cores(task) return H.read(task .. "/status"):match("Cpus_allowed_list:%s*(%S+)") end
  local all = cores("/proc/self")
  local prj = project({ { title = "only", seconds = 0.05 } })
  local pool = pool_of(H.local_worker("a", 2))
  lu.assertTrue(run(pool, { project = prj }).ok)
  local seen, pinned = 0, {}
  local r = run(pool, { project = prj, force = true, run_dir = prj.dir .. "/run2", on_event = function(ev)
    if ev.type ~= "done" then return end
    for _, task in ipairs(fs.glob("/proc/self/task/*")) do
      if task:match("%d+$") ~= tostring(sys.pid()) then -- the loop itself may be pinned now
        seen = seen + 1
        if cores(task) ~= all then pinned[#pinned + 1] = task .. ": " .. tostring(cores(task)) end
      end
    end
  end })
  lu.assertTrue(r.ok)
  lu.assertTrue(seen > 0, "no helper thread seen")
  lu.assertEquals(pinned, {})
end

-- The killed controller's engine may be past its first step (RasUnsteady
-- after RasGeomPreprocess): the resume stops it, also when the controller
-- died before that step's pid reached the journal ("lost"). A pid from
-- another boot is not trusted ("other boot"): the engine is found by its
-- work folder.
function TestSched:test_resume_stops_an_engine_past_its_first_step()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  for _, case in ipairs({ "journaled", "lost", "other boot" }) do
    local d = H.tmpdir("sched")
    H.project(d, { { title = "preprocessed, then slow", seconds = 60 } })
    assert(os.remove(d .. "/Sample.x01")) -- the preprocessor runs first
    local pid, run_dir = start_controller(d, 1)
    H.wait_for(function() return journal_count(run_dir, "launched") == 2 end, 30,
      "RasUnsteady started after the preprocessor")
    sys.kill(pid, "KILL")
    sys.wait(pid, 10)
    lu.assertEquals(#engines_alive(), 1)
    local jp = run_dir .. "/journal.jsonl"
    local keep = {}
    for line in io.lines(jp) do
      if case == "other boot" then line = line:gsub('"boot_id":"[^"]*"', '"boot_id":"another"') end
      if case ~= "lost" or not line:find('"step":1', 1, true) then keep[#keep + 1] = line end
    end
    assert(fs.write(jp, table.concat(keep, "\n") .. "\n"))
    local r = H.rasrun({ "resume", run_dir }, { env = { FAKE_RAS_SECONDS = "0.2" }, timeout = 60 })
    lu.assertEquals(r.code, 0, r.stderr)
    if case == "journaled" then
      lu.assertStrContains(r.stderr, "stopping engine pid")
    else
      lu.assertNotStrContains(r.stderr, "stopping engine pid", case)
      lu.assertStrContains(r.stderr, "still working in", case)
    end
    lu.assertEquals(engines_alive(), {})
    lu.assertTrue(rasrun.checks.standard {}(d .. "/Sample.p01.hdf").ok)
    H.cleanup()
  end
end

-- A process whose working folder was removed meanwhile is still found
-- working in it (the kernel reads its folder as "DIR (deleted)").
function TestSched:test_a_process_in_a_removed_folder_is_found_by_it()
  local dir = H.tmpdir("gone") .. "/slot.1"
  assert(fs.mkdirs(dir))
  local pid = assert(H.spawn({ "sleep", "30" }, { cwd = dir }))
  H.wait_for(function() return #sys.in_folder(dir) == 1 end, 10, "the process in its folder")
  assert(fs.rmtree(dir))
  lu.assertEquals(sys.in_folder(dir), { pid })
  sys.kill(pid, "KILL")
  sys.wait(pid, 10)
end

-- A local worker whose work folder cannot be made is down for good: its
-- plans fail at once, naming why, instead of waiting down_grace for it.
function TestSched:test_a_work_folder_that_cannot_be_made_fails_the_plans_at_once()
  local d = H.tmpdir("work")
  assert(fs.write(d .. "/afile", "not a folder"))
  local prj = project({ { title = "a", seconds = 0.05 } })
  local t0 = sys.monotonic()
  local r = run(pool_of(H.local_worker("a", 1, { workdir = d .. "/afile/wd" })), { project = prj })
  lu.assertTrue(sys.monotonic() - t0 < 10, ("took %.1f s"):format(sys.monotonic() - t0))
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, "Not a directory")
end

-- A read-only input is staged as a copy its owner can write: the engine
-- writes into it (the .tmp.hdf), and the project's file is never written.
function TestSched:test_a_read_only_input_is_staged_writable()
  local home = H.engine_needing_a_writable_tmp_hdf(H.tmpdir("engine"))
  local prj, d = project({ { title = "a", seconds = 0.05 } })
  lu.assertEquals(sys.run({ "chmod", "444", d .. "/Sample.p01.tmp.hdf" }).code, 0)
  local r = run(pool_of(H.local_worker("a", 1, { engine = { kind = "linux", home = home } })), { project = prj })
  lu.assertTrue(r.ok, tostring(r.results[1].reason))
  lu.assertEquals(fs.stat(d .. "/Sample.p01.tmp.hdf").mode & 511, 292) -- 0444, as it was
end

-- An input that is a symbolic link (to a shared boundary file, say, by a
-- relative path) is staged as what it points to; one that is not a file at
-- all (a FIFO) fails the plan at once, naming it, instead of holding the run:
-- copied (the .tmp.hdf) or one that would be linked (the .bNN).
function TestSched:test_inputs_that_are_symbolic_links_or_fifos()
  local prj, d = project({ { title = "a", seconds = 0 }, { title = "b", seconds = 0 },
                          { title = "c", seconds = 0 } })
  os.remove(d .. "/Sample.b03")
  lu.assertEquals(sys.run({ "mkfifo", d .. "/Sample.b03" }).code, 0)
  assert(fs.mkdirs(d .. "/shared"))
  assert(fs.rename(d .. "/Sample.b01", d .. "/shared/Sample.b01"))
  lu.assertEquals(sys.run({ "ln", "-s", "shared/Sample.b01", d .. "/Sample.b01" }).code, 0)
  os.remove(d .. "/Sample.p02.tmp.hdf")
  lu.assertEquals(sys.run({ "mkfifo", d .. "/Sample.p02.tmp.hdf" }).code, 0)
  local r = run(pool_of(H.local_worker("a", 2)), { project = prj })
  lu.assertEquals(H.result(r, "01").status, "ok")
  local two = H.result(r, "02")
  lu.assertEquals(two.status, "failed")
  lu.assertStrContains(two.reason, d .. "/Sample.p02.tmp.hdf")
  lu.assertStrContains(two.reason, "Invalid argument")
  local three = H.result(r, "03")
  lu.assertEquals(three.status, "failed")
  lu.assertStrContains(three.reason, d .. "/Sample.b03")
end

-- An engine that started just as the controller was killed (its
-- "launched" line not written yet): the resume stops it by its work folder
-- before running the plan again. The moment is made by taking the line out
-- of the journal of a controller killed with its engine running.
function TestSched:test_resume_stops_an_engine_that_started_as_the_controller_died()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local _, d = project({ { title = "first", seconds = 60 }, { title = "second", seconds = 0.2 } })
  local pid, run_dir = start_controller(d, 1)
  H.wait_for(function() return #engines_alive() == 1 and journal_count(run_dir, "launched") == 1 end,
    20, "the first engine")
  sys.kill(pid, "KILL")
  sys.wait(pid, 10)
  local kept = {}
  for line in H.read(run_dir .. "/journal.jsonl"):gmatch("[^\n]+\n") do
    if not line:find('"ev":"launched"', 1, true) then kept[#kept + 1] = line end
  end
  assert(fs.write(run_dir .. "/journal.jsonl", table.concat(kept)))
  lu.assertEquals(journal_count(run_dir, "launched"), 0)
  local r = H.rasrun({ "resume", run_dir }, { env = { FAKE_RAS_SECONDS = "0.2" }, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "still working in")
  lu.assertEquals(engines_alive(), {})
  for _, n in ipairs({ "01", "02" }) do
    lu.assertTrue(rasrun.checks.standard {}(d .. "/Sample.p" .. n .. ".hdf").ok, n)
  end
end

-- A big input (a several-GB .pNN.tmp.hdf) is copied on a thread of its
-- own: the loop goes on meanwhile, and Ctrl-C stops the copy within a
-- slice, not after it (16 GB, sparse: seconds to copy, no disk taken).
function TestSched:test_ctrl_c_while_a_big_input_is_copied()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local _, d = project({ { title = "first", seconds = 60 }, { title = "big", seconds = 0.2 } })
  lu.assertEquals(sys.run({ "truncate", "-s", "16G", d .. "/Sample.p02.tmp.hdf" }).code, 0)
  local pid, run_dir, work = start_controller(d, 2)
  H.wait_for(function() return journal_count(run_dir, "launched") == 1 and journal_count(run_dir, "attempt") == 2 end,
    20, "the first engine, and the second plan staging")
  local t0 = sys.monotonic()
  sys.kill(pid, "INT")
  lu.assertEquals(sys.wait(pid, 60), 130)
  lu.assertTrue(sys.monotonic() - t0 < 5, ("%.1f s after Ctrl-C"):format(sys.monotonic() - t0))
  lu.assertEquals(engines_alive(), {})
  lu.assertEquals(fs.list(work), {})
  lu.assertStrContains(H.read(d .. "/err.txt"), "2 cancelled")
end

-- A controller process running two plans of this many seconds, both started.
local function two_engines_running(seconds)
  local _, d = project({ { title = "a", seconds = seconds }, { title = "b", seconds = seconds } })
  local pid, run_dir = start_controller(d, 2)
  H.wait_for(function() return journal_count(run_dir, "launched") == 2 end, 20, "two engines")
  return d, pid, run_dir
end

-- Someone opening a replaced result while rasrun empties it for reuse (a
-- copy or a backup of the project folder during a run) makes the kernel send
-- rasrun SIGIO, whose default action ends a process: the run goes on. Its
-- engines get the signal's default action back.
function TestSched:test_sigio_from_a_broken_lease_does_not_stop_the_run()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local d, pid, run_dir = two_engines_running(1.5)
  for _, e in ipairs(engines_alive()) do
    local ignored = tonumber(H.read("/proc/" .. e .. "/status"):match("SigIgn:%s*(%x+)"), 16)
    lu.assertEquals(ignored & (1 << 28), 0, "SIGIO (29) ignored in engine " .. e)
  end
  sys.kill(pid, "IO")
  lu.assertEquals(sys.wait(pid, 30), 0)
  lu.assertStrContains(H.read(d .. "/out.txt"), "finished\ttrue")
  lu.assertEquals(engines_alive(), {})
end

-- A run whose project moved after its controller was killed cannot be
-- resumed; `rasrun resume` says so, and still stops the engines it left.
function TestSched:test_resume_of_a_moved_project_stops_what_the_run_left()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local base = H.tmpdir("moved")
  local d = base .. "/prj"
  H.project(d, { { title = "a", seconds = 60 } })
  local pid = assert(H.spawn({ H.bin, "run", H.root .. "/tests/recipes/pool_run.lua", d, "1" },
    { stdout = base .. "/out.txt", stderr = base .. "/err.txt" }))
  local runs = d .. "/.rasrun/runs"
  H.wait_for(function() return #engines_alive() == 1 and fs.isdir(runs) and #fs.list(runs) == 1 end,
    20, "the engine")
  local id = fs.list(runs)[1]
  sys.kill(pid, "KILL")
  sys.wait(pid, 10)
  assert(fs.rename(d, base .. "/moved"))
  local r = H.rasrun({ "resume", base .. "/moved/.rasrun/runs/" .. id }, { timeout = 60 })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, d .. "/Sample.prj is not there any more")
  lu.assertEquals(engines_alive(), {})
end

-- The same when the run's recipe is gone: said so, and the engine the run
-- left is stopped (once: it is named once).
function TestSched:test_resume_without_its_recipe_stops_what_the_run_left()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local base = H.tmpdir("norecipe")
  local d = base .. "/prj"
  H.project(d, { { title = "a", seconds = 60 } })
  local recipe = base .. "/run.lua"
  assert(fs.write(recipe, H.read(H.root .. "/tests/recipes/pool_run.lua")))
  local pid = assert(H.spawn({ H.bin, "run", recipe, d, "1" },
    { stdout = base .. "/out.txt", stderr = base .. "/err.txt" }))
  local runs = d .. "/.rasrun/runs"
  H.wait_for(function() return #engines_alive() == 1 and fs.isdir(runs) and #fs.list(runs) == 1
    and journal_count(runs .. "/" .. fs.list(runs)[1], "launched") == 1 end, 20, "the engine")
  sys.kill(pid, "KILL")
  sys.wait(pid, 10)
  assert(os.remove(recipe))
  local r = H.rasrun({ "resume", runs .. "/" .. fs.list(runs)[1] }, { timeout = 60 })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "its recipe " .. recipe .. " is not there any more")
  local _, named = r.stderr:gsub("stopping", "")
  lu.assertEquals(named, 1, r.stderr)
  lu.assertEquals(engines_alive(), {})
  lu.assertEquals(fs.list(d .. "/.work"), {}) -- its work folders are gone (pool_run.lua's default)
end

-- `rasrun resume` of a run whose controller is still going is refused, and
-- leaves its engines alone.
function TestSched:test_resume_of_a_run_still_going_is_refused()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local d, pid, run_dir = two_engines_running(30)
  local r = H.rasrun({ "resume", run_dir }, { env = { FAKE_RAS_SECONDS = "0.2" }, timeout = 60 })
  lu.assertEquals(r.code, 2)
  -- said at once, in rasrun's words, without first claiming to resume
  lu.assertEquals(r.stderr, ("rasrun: cannot resume %s: %s/journal.jsonl is in use: another rasrun is "
    .. "running this run (resume it once that one has ended)\n"):format(run_dir, run_dir))
  lu.assertEquals(H.rasrun({ "resume", run_dir .. "/nosuch" }).stderr,
    "rasrun: " .. run_dir .. "/nosuch: no such folder\n")
  lu.assertEquals(#engines_alive(), 2)
  lu.assertEquals(journal_count(run_dir, "run_resume"), 0)
  sys.kill(pid, "TERM")
  lu.assertEquals(sys.wait(pid, 30), 143)
  lu.assertEquals(engines_alive(), {})
end

-- A journal whose last line a crash cut short: the resume's lines start on
-- a line of their own, and a later resume reads them.
function TestSched:test_a_journal_cut_mid_line_is_resumed()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local _, d = project({ { title = "a", seconds = 0.2 }, { title = "b", seconds = 60 } })
  local pid, run_dir = start_controller(d, 1)
  H.wait_for(function() return journal_count(run_dir, "launched", "Sample/p02") == 1 end, 20, "p02")
  sys.kill(pid, "KILL")
  sys.wait(pid, 10)
  local f = assert(io.open(run_dir .. "/journal.jsonl", "ab"))
  f:write('{"ev":"attempt_end","job":"Sample/p02","attem')
  f:close()
  local r = H.rasrun({ "resume", run_dir }, { env = { FAKE_RAS_SECONDS = "0.2" }, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(engines_alive(), {})
  local entries, broken = require("rasrun.journal").read(run_dir .. "/journal.jsonl")
  lu.assertEquals(broken, 1)
  lu.assertEquals(journal_count(run_dir, "run_resume"), 1)
  lu.assertEquals(entries[#entries].ev, "run_end")
end

-- A recipe with several pool:runs: `rasrun resume` gives the run folder to
-- the pool:run over the same projects and plans, whichever it is; the others
-- run as runs of their own and leave that folder's reports alone.
function TestSched:test_resume_goes_to_the_pool_run_of_its_projects()
  local d = H.tmpdir("sched")
  local a, b = d .. "/A", d .. "/B"
  H.project(a, { { title = "a", seconds = 0.05 } })
  H.project(b, { { title = "b", seconds = 0.05 }, { title = "b too", seconds = 0.05 } })
  local recipe = d .. "/three.lua"
  assert(fs.write(recipe, [[
local rasrun = require "rasrun"
local pool = rasrun.pool { rasrun.worker { type = "local", name = "here", slots = 1,
  engine = { kind = "linux", home = rasrun.sim.home("linux") } } }
for _, run in ipairs({ { arg[1] }, { arg[2], { "01" } }, { arg[2], { "02" } } }) do
  print("RUNDIR " .. pool:run { project = run[1] .. "/Sample.prj", plans = run[2], force = true,
                                progress = "plain" }.run_dir)
end
]]))
  local env = { FAKE_RAS_SECONDS = "0" }
  local r = H.rasrun({ "run", recipe, a, b }, { env = env })
  lu.assertEquals(r.code, 0, r.stderr)
  local made = {}
  for dir in r.stdout:gmatch("RUNDIR (%S+)") do made[#made + 1] = dir end
  lu.assertEquals(#made, 3)
  for i, dir in ipairs(made) do
    r = H.rasrun({ "resume", dir }, { env = env })
    lu.assertEquals(r.code, 0, r.stderr)
    local dirs = {}
    for other in r.stdout:gmatch("RUNDIR (%S+)") do dirs[#dirs + 1] = other end
    for k = 1, 3 do
      if k == i then lu.assertEquals(dirs[k], dir) else lu.assertNotEquals(dirs[k], dir) end
    end
    local doc = json.decode(H.read(dir .. "/run.json"))
    lu.assertEquals(#doc.plans, 1)
    lu.assertEquals(doc.plans[1].key, ({ "Sample/p01", "Sample/p01", "Sample/p02" })[i])
    lu.assertEquals(doc.plans[1].project, (i == 1 and a or b) .. "/Sample.prj")
    lu.assertEquals(journal_count(dir, "attempt"), 1) -- nothing ran again
  end
end

-- Runs the project in dir on a controller of its own, kills it (SIGKILL)
-- once its journal holds n[ev] lines of each event ev, and returns its run folder.
local function killed_when(dir, slots, env, n, what)
  local pid, run_dir = start_controller(dir, slots, env)
  H.wait_for(function()
    for ev, count in pairs(n) do
      if journal_count(run_dir, ev) ~= count then return false end
    end
    return true
  end, 30, what)
  sys.kill(pid, "KILL")
  sys.wait(pid, 10)
  return run_dir
end

-- A run of four plans on two slots whose controller was killed (SIGKILL)
-- when plans 01 and 02 had ended and 03 and 04 were running.
local function killed_with_two_done(second)
  local _, d = project({ { title = "quick", seconds = 0.2 }, second,
                         { title = "slow", seconds = 60 }, { title = "slower", seconds = 60 } })
  return d, killed_when(d, 2, nil, { done = 2, launched = 4 }, "two plans done and two running")
end

-- The attempts that failed before the controller was killed count against
-- the retries in the resume, and its retry goes to a worker that has not
-- failed the plan, as in a run that was never interrupted.
function TestSched:test_resume_counts_the_failed_attempts_against_retries()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local _, d = project({ { title = "crashes", mode = "crash", seconds = 2 } })
  local env = { RASRUN_TEST_TWO = "1", RASRUN_TEST_RETRIES = "1" }
  local run_dir = killed_when(d, 1, env, { attempt_end = 1, launched = 2 },
    "attempt 1 failed on A and attempt 2 running on B")
  env.RASRUN_TEST_RUNDIR, env.RASRUN_TEST_WORKDIR = run_dir, H.tmpdir("work")
  local r = H.rasrun({ "resume", run_dir }, { env = env, timeout = 60 })
  lu.assertEquals(r.code, 1, r.stderr)
  lu.assertEquals(engines_alive(), {})
  local workers = {}
  for _, e in ipairs(H.journal(run_dir)) do
    if e.ev == "attempt" then workers[#workers + 1] = e.worker end
  end
  -- 1 failed on A, 2 cancelled on B as the controller died, 3 (the one
  -- retry) on B; not again on A, and no fourth
  lu.assertEquals(workers, { "A", "B", "B" })
  local plan = json.decode(H.read(run_dir .. "/run.json")).plans[1]
  lu.assertEquals(plan.status, "failed")
  lu.assertEquals(plan.attempts, 3)
end

-- A plan that finished ok in the run being resumed and runs again (a source
-- changed since) gets all its retries: the failures before its ok do not count.
function TestSched:test_resume_does_not_count_failures_before_an_ok()
  local prj, d = project({ { title = "crashes now", mode = "crash", seconds = 0.05 } })
  local resume_dir = d .. "/run1"
  assert(fs.mkdirs(resume_dir))
  local lines = {
    { ev = "run_start", run_id = "run1", t = sys.now() - 60 },
    { ev = "attempt", job = "Sample/p01", plan = "01", attempt = 1, worker = "A", t = sys.now() - 50 },
    { ev = "attempt_end", job = "Sample/p01", attempt = 1, ok = false, reason = "crashed", t = sys.now() - 45 },
    { ev = "attempt", job = "Sample/p01", plan = "01", attempt = 2, worker = "B", t = sys.now() - 40 },
    { ev = "attempt_end", job = "Sample/p01", attempt = 2, ok = true, t = sys.now() - 35 },
    { ev = "done", job = "Sample/p01", status = "ok", result = d .. "/Sample.p01.hdf", attempts = 2 },
  }
  local text = {}
  for i, e in ipairs(lines) do text[i] = json.encode(e) end
  assert(fs.write(resume_dir .. "/journal.jsonl", table.concat(text, "\n") .. "\n"))
  local pool = pool_of(H.local_worker("A", 1), H.local_worker("B", 1, { tier = 1 }))
  local r = run(pool, { project = prj, retries = 1, resume = resume_dir })
  local res = r.results[1]
  lu.assertEquals(res.status, "failed")
  local workers = {}
  for _, h in ipairs(res.history) do workers[#workers + 1] = h.worker .. " " .. h.status end
  -- the resume's two attempts, on A then on B, as in a run of its own
  lu.assertEquals(workers, { "A failed", "B ok", "A failed", "B failed" })
end

-- A project in a folder named in Latin-1 (not UTF-8): the journal keeps the
-- name's bytes, and the resume finds the project and what finished in it.
function TestSched:test_resume_of_a_project_named_in_latin1()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local d = H.tmpdir("sched") .. "/Caf\233"
  assert(fs.mkdirs(d))
  H.project(d, { { title = "quick", seconds = 0.2 }, { title = "slow", seconds = 60 } })
  local run_dir = killed_when(d, 2, nil, { done = 1, launched = 2 }, "one plan done and one running")
  local r = H.rasrun({ "resume", run_dir }, { env = { FAKE_RAS_SECONDS = "0.2" }, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(engines_alive(), {})
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p01"), 1) -- not rerun
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p02"), 2)
  local doc = json.decode(H.read(run_dir .. "/run.json"))
  lu.assertTrue(doc.ok)
  lu.assertStrContains(doc.plans[1].project, "/Caf\195\169/Sample.prj") -- shown as UTF-8
end

-- What finished stays as it was through resumes, and only that: a failed
-- plan stays failed, a finished plan's times do not grow with each resume,
-- and a result whose sources changed since runs again.
function TestSched:test_resume_keeps_what_finished_as_it_was()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local d, run_dir = killed_with_two_done({ title = "unstable", mode = "unstable" })
  local env = { FAKE_RAS_SECONDS = "0.2" }
  local function resume()
    os.remove(run_dir .. "/run.json")
    local r = H.rasrun({ "resume", run_dir }, { env = env, timeout = 60 })
    lu.assertEquals(r.code, 1, r.stderr) -- plan 02 failed
    lu.assertEquals(engines_alive(), {})
    return json.decode(H.read(run_dir .. "/run.json"))
  end
  local doc = resume()
  lu.assertEquals({ doc.counts.ok, doc.counts.failed }, { 3, 1 })
  lu.assertEquals(doc.plans[2].status, "failed")
  lu.assertStrContains(doc.plans[2].reason, "unstable")
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p02"), 1) -- not run again
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p03"), 2)
  local elapsed = doc.plans[1].elapsed
  lu.assertTrue(elapsed < 5, elapsed)
  sys.sleep(1.5)
  doc = resume() -- a resume of the finished run runs nothing
  lu.assertEquals(journal_count(run_dir, "attempt"), 6)
  lu.assertAlmostEquals(doc.plans[1].elapsed, elapsed, 0.01)
  lu.assertEquals(doc.plans[2].status, "failed")
  -- the geometry, which every plan reads, changed: what finished runs again
  assert(fs.write(d .. "/Sample.g01", H.read(d .. "/Sample.g01") .. "\r\n"))
  doc = resume()
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p01"), 2)
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p03"), 3)
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p02"), 1)
  lu.assertEquals(rasrun.project.open(d .. "/Sample.prj"):plan("01"):result_state(), "current")
end

-- A crash of the machine can leave a result the journal says is done
-- without its data (empty, its time as it was): the resume runs it again.
function TestSched:test_resume_runs_again_a_finished_plan_whose_result_lost_its_data()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local d, run_dir = killed_with_two_done({ title = "quick too", seconds = 0.2 })
  local file = d .. "/Sample.p01.hdf"
  local mtime = fs.mtime(file)
  assert(fs.write(file, ""))
  fs.touch(file, mtime)
  local r = H.rasrun({ "resume", run_dir }, { env = { FAKE_RAS_SECONDS = "0.2" }, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout .. r.stderr, "Sample/p01: its result, which the interrupted run finished, is damaged")
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p01"), 2)
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p02"), 1) -- intact: kept
  lu.assertTrue(fs.stat(file).size > 0)
  lu.assertEquals(engines_alive(), {})
end

-- A run started from a folder that is gone by the resume: nothing can be
-- run again from there, and the engines the run left are stopped all the same.
function TestSched:test_resume_from_a_start_folder_that_is_gone_stops_what_the_run_left()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local _, d = project({ { title = "slow", seconds = 60 } })
  local cwd = H.tmpdir("cwd")
  local pid, run_dir = start_controller(d, 1, nil, { "sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", cwd })
  H.wait_for(function() return journal_count(run_dir, "launched") == 1 end, 20, "the engine")
  sys.kill(pid, "KILL")
  sys.wait(pid, 10)
  lu.assertEquals(#engines_alive(), 1)
  assert(fs.rmtree(cwd))
  local r = H.rasrun({ "resume", run_dir }, { timeout = 60 })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "the folder it was started from is not there any more")
  lu.assertNotStrContains(r.stderr, "stack traceback")
  H.wait_for(function() return #engines_alive() == 0 end, 5, "the engine to be stopped")
end

-- A run of two plans on one slot, finished, then its journal cut as a kill
-- of its controller right after plan 01's result was moved into place
-- would have left it: up to plan 01's attempt_end (with_end) or just
-- before it. Plan 02 had not run then. Returns the project folder.
local function killed_after_commit(with_end)
  local _, d = project({ { title = "a", seconds = 0.05 }, { title = "b", seconds = 0.05 } })
  local env = { FAKE_RAS_SECONDS = "0", RASRUN_TEST_RUNDIR = d .. "/run" }
  local r = H.rasrun({ "run", H.root .. "/tests/recipes/pool_run.lua", d, "1" }, { env = env, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  local lines = {}
  for line in H.read(d .. "/run/journal.jsonl"):gmatch("[^\n]+") do
    local p01_end = line:find('"ev":"attempt_end"', 1, true) and line:find("Sample/p01", 1, true)
    if p01_end and not with_end then break end
    lines[#lines + 1] = line
    if p01_end then break end
  end
  assert(fs.write(d .. "/run/journal.jsonl", table.concat(lines, "\n") .. "\n"))
  os.remove(d .. "/run/run.json")
  os.remove(d .. "/Sample.p02.hdf")
  return d
end

-- A controller killed between moving a result into place and journaling
-- the plan done: the resume takes the plan as finished by that attempt.
function TestSched:test_resume_after_a_kill_between_commit_and_done()
  local d = killed_after_commit(true)
  local r = H.rasrun({ "resume", d .. "/run" }, { env = { FAKE_RAS_SECONDS = "0" }, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(journal_count(d .. "/run", "attempt", "Sample/p01"), 1)
  local doc = json.decode(H.read(d .. "/run/run.json"))
  lu.assertEquals(doc.plans[1].status, "ok")
  lu.assertEquals(doc.plans[1].attempts, 1)
  lu.assertEquals(doc.plans[1].history[1].status, "ok")
  lu.assertEquals(doc.plans[2].status, "ok")
end

-- The inode of each file in folder d, by name.
local function inodes_in(d)
  local inodes = {}
  for _, n in ipairs(fs.list(d)) do inodes[n] = fs.stat(d .. "/" .. n).ino end
  return inodes
end

-- What a run of a plan with write_ic on the Windows engine puts in the
-- project: its result and its side files.
local WRITES_IC = { "Sample.p01.03JAN1900 0000.rst", "Sample.bco01", "Sample.c01", "Sample.p01.hdf" }

-- A project whose one plan ran once (its result and side files in place),
-- and whose plan file is then touched, so that the next run runs it.
-- Returns the folder and the inode of each file in it.
local function ran_once(plan, kind)
  local prj, d = project({ plan })
  local w = rasrun.worker { type = "local", name = "here", slots = 1, workdir = H.tmpdir("work"),
                            engine = { kind = kind, home = rasrun.sim.home(kind) } }
  lu.assertTrue(run(pool_of(w), { project = prj, run_dir = d .. "/run0" }).ok)
  lu.assertEquals(sys.run({ "touch", d .. "/Sample.p01" }).code, 0)
  return d, inodes_in(d)
end

-- The controller of a run of the project in d, killed (tests/killat) just
-- after it swaps into place a file whose name ends in suffix; on_launch()
-- is called when the engine has started. Returns the run folder.
local function killed_at_swap(d, kind, suffix, on_launch)
  local pid, run_dir = start_controller(d, 1, { RASRUN_TEST_ENGINE = kind, FAKE_RAS_SECONDS = "1",
    LD_PRELOAD = H.root .. "/build/killat.so", KILLAT_SUFFIX = suffix,
    -- (a sanitized rasrun takes another library preloaded before its own)
    ASAN_OPTIONS = (os.getenv("ASAN_OPTIONS") or "") .. ":verify_asan_link_order=0" })
  H.wait_for(function() return journal_count(run_dir, "launched") == 1 end, 30, "the engine's launch")
  if on_launch then on_launch() end
  sys.wait(pid, 30)
  lu.assertEquals(journal_count(run_dir, "commit"), 1)
  lu.assertEquals(journal_count(run_dir, "attempt_end"), 0)
  return run_dir
end

-- A controller killed while it moved an attempt's files into the project,
-- after two side files (the .bco01 and the restart file) and before the
-- result: the resume puts the old side files back (a new restart file
-- beside the old result would start the plans after it from the wrong
-- state), and removes the new ones; the retry then fails, and the project
-- holds its old files, every one.
function TestSched:test_resume_undoes_a_commit_cut_short()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local d, before = ran_once({ title = "writes a restart file", seconds = 0.2, write_ic = true }, "windows")
  local rst = WRITES_IC[1]
  lu.assertNotNil(before[rst], "no restart file from the first run")
  local run_dir = killed_at_swap(d, "windows", ".rst")
  lu.assertNotEquals(fs.stat(d .. "/" .. rst).ino, before[rst]) -- (the new one was in place)
  local r = H.rasrun({ "resume", run_dir }, { env = { RASRUN_TEST_ENGINE = "windows", FAKE_RAS_MODE = "crash" },
                                              timeout = 60 })
  lu.assertEquals(r.code, 1, r.stderr)
  for _, n in ipairs(WRITES_IC) do
    lu.assertEquals((fs.stat(d .. "/" .. n) or {}).ino, before[n], n .. " is not the old one")
  end
  for _, n in ipairs(fs.list(d)) do lu.assertNil(n:find("rasrun%-"), n) end
end

-- A second resume of a run whose first resume undid a commit cut short
-- leaves the project alone: the commit is journaled as settled (the inodes
-- it names are free after the undo, and may be the new files' by then).
function TestSched:test_a_second_resume_leaves_an_undone_commit_alone()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local d = ran_once({ title = "writes a restart file", seconds = 0.2, write_ic = true }, "windows")
  local run_dir = killed_at_swap(d, "windows", ".rst")
  local env = { env = { RASRUN_TEST_ENGINE = "windows", FAKE_RAS_SECONDS = "0" }, timeout = 60 }
  local r = H.rasrun({ "resume", run_dir }, env)
  lu.assertEquals(r.code, 0, r.stderr)
  local after = inodes_in(d)
  lu.assertEquals(journal_count(run_dir, "commit_settled"), 1)
  r = H.rasrun({ "resume", run_dir }, env)
  lu.assertEquals(r.code, 0, r.stderr)
  for _, n in ipairs(WRITES_IC) do
    lu.assertEquals((fs.stat(d .. "/" .. n) or {}).ino, after[n], n .. " changed")
  end
end

-- A controller killed just after it put a result in place, before it could
-- journal it: the result is dated at its attempt's start all the same, so
-- that its plan file, edited while it ran, is newer, and the plan runs
-- again (the result was made from the plan as it was).
function TestSched:test_a_result_cut_off_from_its_run_is_dated_at_its_start()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local d, before = ran_once({ title = "edited while it runs", seconds = 0.2 }, "linux")
  killed_at_swap(d, "linux", ".p01.hdf", function()
    assert(fs.write(d .. "/Sample.p01", H.read(d .. "/Sample.p01") .. "Description=edited\r\n"))
  end)
  lu.assertNotEquals(fs.stat(d .. "/Sample.p01.hdf").ino, before["Sample.p01.hdf"])
  local plan = rasrun.project.open(d .. "/Sample.prj"):plan("01")
  lu.assertEquals(plan:result_state(), "stale")
end

-- A resume of a run that had finished runs nothing and writes its reports
-- again as they were: its end, its length and its attempts' times (an
-- attempt's end is the run's, not that of its journal line, written after
-- the checks).
function TestSched:test_a_resume_of_a_finished_run_keeps_its_times()
  local _, d = project({ { title = "a", seconds = 0.2 }, { title = "b", seconds = 0.2 } })
  local env = { FAKE_RAS_SECONDS = "0.2", RASRUN_TEST_RUNDIR = d .. "/run" }
  local r = H.rasrun({ "run", H.root .. "/tests/recipes/pool_run.lua", d, "1" }, { env = env, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  local before = json.decode(H.read(d .. "/run/run.json"))
  sys.sleep(1.2)
  os.remove(d .. "/run/run.json")
  os.remove(d .. "/run/report.html")
  r = H.rasrun({ "resume", d .. "/run" }, { timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  local after = json.decode(H.read(d .. "/run/run.json"))
  lu.assertEquals(after.ended, before.ended)
  -- (to the journal's precision: its times are written to 10 us)
  lu.assertAlmostEquals(after.seconds, before.seconds, 1e-4)
  for i = 1, 2 do
    lu.assertEquals(after.plans[i].history[1].ended, before.plans[i].history[1].ended)
  end
  lu.assertStrContains(H.read(d .. "/run/report.html"), ("(%.1f s)"):format(after.seconds))
  -- and so does a resume of that resume
  sys.sleep(1.2)
  r = H.rasrun({ "resume", d .. "/run" }, { timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(json.decode(H.read(d .. "/run/run.json")).ended, before.ended)
end

-- Resumes write the same reports of what finished before them: a plan's
-- time is the one the controller that finished it gave (not the span from
-- its interrupted attempt to its end in a resume), a plan skipped as up to
-- date keeps its checks, and attempts keep their byte counts (0 here).
function TestSched:test_resumes_report_what_finished_as_it_was()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local _, d = project({ { title = "up to date", seconds = 0.1 }, { title = "slow", seconds = 1.5 } })
  local env = { RASRUN_TEST_RUNDIR = d .. "/first" }
  local r = H.rasrun({ "run", H.root .. "/tests/recipes/pool_run.lua", d, "1" }, { env = env, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  assert(os.remove(d .. "/Sample.p02.hdf"))
  -- a run that skips plan 01 and is stopped by Ctrl-C during plan 02
  local pid, run_dir = start_controller(d, 1)
  H.wait_for(function() return journal_count(run_dir, "launched") == 1 end, 20, "plan 02's engine")
  sys.sleep(0.5)
  sys.kill(pid, "INT")
  lu.assertEquals(sys.wait(pid, 30), 130)
  local function resume()
    sys.sleep(1.2) -- (a gap between controllers, that no plan's time may take)
    local rr = H.rasrun({ "resume", run_dir }, { timeout = 60 })
    lu.assertEquals(rr.code, 0, rr.stderr)
    return json.decode(H.read(run_dir .. "/run.json"))
  end
  local once, twice = resume(), resume()
  lu.assertEquals(once.plans[1].status, "skipped")
  lu.assertEquals(#once.plans[1].checks, 4)
  lu.assertEquals(twice.plans[1].checks, once.plans[1].checks)
  lu.assertEquals(once.plans[2].status, "ok")
  lu.assertTrue(once.plans[2].elapsed < 2.5, once.plans[2].elapsed)
  lu.assertAlmostEquals(twice.plans[2].elapsed, once.plans[2].elapsed, 0.01)
  lu.assertEquals(twice.plans[2].attempts, 2)
  for _, h in ipairs(twice.plans[2].history) do lu.assertEquals({ h.bytes_up, h.bytes_down }, { 0, 0 }) end
  -- the lines the second resume wrote again say how many attempts there were
  local restated = {}
  for _, e in ipairs(H.journal(run_dir)) do
    if e.ev == "done" and e.resumed then restated[e.job] = e.attempts end
  end
  lu.assertEquals(restated["Sample/p02"], 2)
end

-- A resume that no pool:run of the recipe takes (here a plan was added
-- since, so the plans differ) stops the engines the dead controller left
-- before the recipe's own run starts any: not after it, beside them.
function TestSched:test_resume_stops_the_engines_left_before_any_new_run()
  local d, run_dir = killed_with_two_done({ title = "quick too", seconds = 0.2 })
  assert(fs.write(d .. "/Sample.prj", H.read(d .. "/Sample.prj") .. "Plan File=p05\r\n"))
  assert(fs.write(d .. "/Sample.p05", H.read(d .. "/Sample.p04")))
  local r = H.rasrun({ "resume", run_dir }, { env = { FAKE_RAS_SECONDS = "0" }, timeout = 60 })
  lu.assertEquals(r.code, 1, r.stderr)
  local stopped = r.stderr:find("stopping engine pid %d+ of plan 03 left by the interrupted run")
  local summary = r.stderr:find("5 plans: ", 1, true)
  lu.assertNotNil(stopped, r.stderr)
  lu.assertNotNil(summary, r.stderr)
  lu.assertTrue(stopped < summary, r.stderr)
  lu.assertStrContains(r.stderr, "nothing in it was resumed")
  lu.assertEquals(engines_alive(), {})
end

-- Two pool:runs over the same plans (a pass, then a forced pass): the one
-- that was interrupted takes the resume, not the first that matches.
function TestSched:test_resume_goes_to_its_own_pool_run_of_the_same_plans()
  local d = H.tmpdir("sched")
  H.project(d .. "/A", { { title = "a", seconds = 0.05 }, { title = "b", seconds = 0.05 } })
  local recipe = d .. "/twice.lua"
  assert(fs.write(recipe, [[
local rasrun = require "rasrun"
local pool = rasrun.pool { rasrun.worker { type = "local", name = "here", slots = 1,
  engine = { kind = "linux", home = rasrun.sim.home("linux") } } }
for pass = 1, 2 do
  print("RUNDIR " .. pool:run { project = arg[1] .. "/Sample.prj", force = pass == 2,
                                progress = "plain" }.run_dir)
end
]]))
  local env = { FAKE_RAS_SECONDS = "0" }
  local r = H.rasrun({ "run", recipe, d .. "/A" }, { env = env })
  lu.assertEquals(r.code, 0, r.stderr)
  local made = {}
  for dir in r.stdout:gmatch("RUNDIR (%S+)") do made[#made + 1] = dir end
  lu.assertEquals(#made, 2)
  r = H.rasrun({ "resume", made[2] }, { env = env })
  lu.assertEquals(r.code, 0, r.stderr)
  local dirs = {}
  for other in r.stdout:gmatch("RUNDIR (%S+)") do dirs[#dirs + 1] = other end
  lu.assertNotEquals(dirs[1], made[2])
  lu.assertEquals(dirs[2], made[2])
  -- the forced pass's plans are still its own: ok, not skipped as up to date
  local doc = json.decode(H.read(made[2] .. "/run.json"))
  lu.assertEquals({ doc.plans[1].status, doc.plans[2].status }, { "ok", "ok" })
end

-- A result put in place just before the controller died (its attempt_end
-- never written), found up to date by the resume: skipped, and the attempt
-- that made it stays in its history.
function TestSched:test_a_result_committed_as_the_controller_died_keeps_its_attempt()
  local d = killed_after_commit(false)
  local r = H.rasrun({ "resume", d .. "/run" }, { env = { FAKE_RAS_SECONDS = "0" }, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  local doc = json.decode(H.read(d .. "/run/run.json"))
  lu.assertEquals(doc.plans[1].status, "skipped")
  lu.assertEquals(#doc.plans[1].history, 1)
  lu.assertEquals(doc.plans[1].history[1].reason, "the controller died during it")
  lu.assertEquals(journal_count(d .. "/run", "attempt", "Sample/p01"), 1)
  lu.assertEquals(doc.plans[2].status, "ok")
end

-- A run folder used again (a recipe's fixed run_dir): the resume is of the
-- last run in it. Plans that run skipped as up to date stay skipped.
function TestSched:test_resume_of_a_run_folder_used_again()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local _, d = project({ { title = "quick", seconds = 0.2 }, { title = "quick too", seconds = 0.2 },
                         { title = "slow", seconds = 60 }, { title = "slower", seconds = 60 } })
  local env = { FAKE_RAS_SECONDS = "0.1", RASRUN_TEST_RUNDIR = d .. "/run" }
  local r = H.rasrun({ "run", H.root .. "/tests/recipes/pool_run.lua", d, "2" }, { env = env, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  local first_id = H.journal(d .. "/run")[1].run_id
  for _, n in ipairs({ "03", "04" }) do -- plans 03 and 04 changed: they run again
    assert(fs.write(d .. "/Sample.p" .. n, H.read(d .. "/Sample.p" .. n) .. "\r\n"))
  end
  local pid, run_dir = start_controller(d, 2)
  H.wait_for(function() return journal_count(run_dir, "launched") == 6 end, 30, "two engines of the second run")
  sys.kill(pid, "KILL")
  sys.wait(pid, 10)
  local second_id
  for _, e in ipairs(H.journal(run_dir)) do
    if e.ev == "run_start" then second_id = e.run_id end
  end
  lu.assertNotEquals(second_id, first_id)
  r = H.rasrun({ "resume", run_dir }, { env = { FAKE_RAS_SECONDS = "0.1" }, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(engines_alive(), {}) -- the second run's engines were stopped
  local doc = json.decode(H.read(run_dir .. "/run.json"))
  lu.assertEquals({ doc.counts.ok, doc.counts.skipped }, { 2, 2 })
  lu.assertEquals(doc.plans[1].status, "skipped")
  lu.assertStrContains(doc.plans[1].reason, "up to date")
  lu.assertEquals(doc.plans[3].status, "ok")
  lu.assertEquals(doc.run_id, second_id)
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p03"), 3) -- first run, second, resume
  local prj = rasrun.project.open(d .. "/Sample.prj")
  for _, n in ipairs({ "01", "02", "03", "04" }) do lu.assertEquals(prj:plan(n):result_state(), "current", n) end
end

function TestSched:test_sigterm_exits_143()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local _, d = project({ { title = "long", seconds = 30 } })
  local pid, run_dir = start_controller(d, 1)
  H.wait_for(function() return journal_count(run_dir, "launched") == 1 end, 20, "the engine")
  sys.kill(pid, "TERM")
  lu.assertEquals(sys.wait(pid, 30), 143)
  lu.assertEquals(engines_alive(), {})
end

function TestSched:test_sigkill_then_resume_finishes_the_rest()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local d, run_dir = killed_with_two_done({ title = "quick too", seconds = 0.2 })
  -- the orphans of the dead controller
  H.wait_for(function() return #engines_alive() == 2 end, 10, "the two orphaned engines")
  local done_before = H.read(d .. "/Sample.p01.hdf")
  -- what it had staged into the project and not moved into place yet (a
  -- kill between a result's stage-out and its commit), and a staged file of
  -- some other run, which is not this run's to remove
  local run_id = H.journal(run_dir)[1].run_id
  local staged = ("%s/.Sample.p02.hdf.rasrun-%s-j1-a1"):format(d, run_id)
  local copying = ("%s/..Sample.p03.hdf.rasrun-%s-j2-a1.00c0ffee12345678.part"):format(d, run_id)
  local other = d .. "/.Sample.p02.hdf.rasrun-20260101-000000-abcd-j1-a1"
  assert(fs.write(staged, "half"))
  assert(fs.write(copying, "a third"))
  assert(fs.write(other, "not ours"))
  -- resume: the orphans are stopped, the two unfinished plans run again (quickly now)
  local r = H.rasrun({ "resume", run_dir }, { env = { FAKE_RAS_SECONDS = "0.2" }, timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  -- each once: stopped before the recipe ran, not again by its pool:run
  for _, plan in ipairs({ "03", "04" }) do
    lu.assertEquals(select(2, r.stderr:gsub("stopping engine pid %d+ of plan " .. plan, "")), 1, r.stderr)
  end
  lu.assertStrMatches(r.stderr, ".*ok%s+Sample/p03 in [%d:]+ %(2 attempts%).*") -- the killed one's counts
  lu.assertEquals(engines_alive(), {})
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p01"), 1) -- not rerun
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p03"), 2)
  -- the resume goes on with the run's id and its attempt numbers: its
  -- staged names, logs and journal lines never meet the killed run's
  local numbers, starts = {}, {}
  for _, e in ipairs(H.journal(run_dir)) do
    if e.ev == "attempt" and e.job == "Sample/p03" then numbers[#numbers + 1] = e.attempt end
    if e.ev == "run_start" or e.ev == "run_resume" then starts[#starts + 1] = e.run_id end
  end
  lu.assertEquals(numbers, { 1, 2 })
  lu.assertEquals(starts[2], starts[1])
  lu.assertTrue(fs.isfile(run_dir .. "/logs/Sample_p03-a2.log"))
  lu.assertEquals(H.read(d .. "/Sample.p01.hdf"), done_before)
  lu.assertFalse(fs.exists(staged))
  lu.assertFalse(fs.exists(copying))
  lu.assertEquals(H.read(other), "not ours")
  for _, n in ipairs({ "01", "02", "03", "04" }) do
    lu.assertTrue(rasrun.checks.standard {}(d .. "/Sample.p" .. n .. ".hdf").ok, n)
  end
  local doc = json.decode(H.read(run_dir .. "/run.json"))
  lu.assertTrue(doc.ok)
  lu.assertTrue(doc.plans[1].resumed)
  -- the reports tell every plan's attempts, the killed controller's too
  lu.assertEquals(doc.plans[1].attempts, 1)
  lu.assertEquals(doc.plans[1].worker, "here")
  lu.assertEquals(doc.plans[1].history[1].status, "ok")
  lu.assertNotNil(doc.plans[1].history[1].started)
  -- and the checks of what it finished, as those of what the resume ran
  local function check_names(plan)
    local t = {}
    for _, c in ipairs(plan.checks) do t[#t + 1] = c.name .. (c.ok == false and " failed" or "") end
    return t
  end
  lu.assertTrue(#doc.plans[1].checks > 3)
  lu.assertEquals(check_names(doc.plans[1]), check_names(doc.plans[3]))
  lu.assertEquals(doc.plans[3].attempts, 2)
  lu.assertEquals(doc.plans[3].history[1].status, "cancelled")
  lu.assertEquals(doc.plans[3].history[2].status, "ok")
  -- the killed controller's unfinished attempts end when it died (its last
  -- journal line), not at once; the run's time starts with that controller
  local h1 = doc.plans[3].history[1]
  local attempt_t, last_t
  for _, e in ipairs(H.journal(run_dir)) do
    if e.ev == "run_resume" then break end
    if e.ev == "attempt" and e.job == "Sample/p03" then attempt_t = e.t end
    last_t = e.t
  end
  -- (as the resume stopped the orphan, when the controller's last line was)
  lu.assertTrue(h1.seconds > 0 and h1.seconds <= last_t - attempt_t + 1e-3, json.encode(h1))
  lu.assertTrue(doc.started <= h1.started, doc.started .. " " .. h1.started)
  -- the timeline reaches back to the killed controller's attempts
  lu.assertNil(H.read(run_dir .. "/report.html"):find('x="%-'), "a bar left of the timeline")
  -- the reports are not fsync'd: a crash may take them, and a resume of the
  -- finished run writes them again without running anything
  os.remove(run_dir .. "/run.json")
  os.remove(run_dir .. "/report.html")
  r = H.rasrun({ "resume", run_dir }, { timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(journal_count(run_dir, "attempt", "Sample/p03"), 2)
  doc = json.decode(H.read(run_dir .. "/run.json"))
  lu.assertTrue(doc.ok)
  lu.assertEquals(doc.plans[3].attempts, 2)
  lu.assertEquals(doc.plans[3].history[2].worker, "here")
  lu.assertEquals(check_names(doc.plans[3]), check_names(doc.plans[1]))
  lu.assertAlmostEquals(doc.plans[3].history[1].seconds, h1.seconds, 0.01)
  lu.assertStrContains(H.read(run_dir .. "/report.html"), "Sample/p04")
end
