-- Workers and pools as a recipe makes them: their settings checked where
-- the recipe gives them, and workers that cannot work kept from failing
-- the plans sent to them.
local lu = require "luaunit"
local rasrun = require "rasrun"
local fs = require "rasrun.fs"
local sys = require "rasrun.sys"
local json = require "rasrun.json"
local H = require "helpers"

TestPool = {}

function TestPool:tearDown() H.cleanup() end

local function project(plans)
  local d = H.tmpdir("pool")
  return rasrun.project.open(H.project(d, plans)), d
end

local function ssh_worker(extra)
  local cfg = { type = "ssh", name = "node", host = "127.0.0.1", engine = { kind = "linux", home = "/opt/hecras" } }
  for k, v in pairs(extra) do cfg[k] = v end
  return rasrun.worker(cfg)
end

-- Slot folders and logs spell a worker's name with '/' and ' ' as '_':
-- "big box" and "big_box" would empty each other's folders mid-run.
function TestPool:test_workers_whose_folders_would_clash_are_refused()
  local ok, err = pcall(rasrun.pool, { H.local_worker("big box", 1), H.local_worker("big_box", 1) })
  lu.assertFalse(ok)
  lu.assertStrContains(err, 'workers "big box" and "big_box" would share their work folders ("big_box")')
  lu.assertNotNil(rasrun.pool { H.local_worker("big box", 1), H.local_worker("big-box", 1) })
  -- folders that cannot meet: other work folders, other hosts
  lu.assertNotNil(rasrun.pool { H.local_worker("big box", 1, { workdir = H.tmpdir("w1") }),
                                H.local_worker("big_box", 1, { workdir = H.tmpdir("w2") }) })
  lu.assertNotNil(rasrun.pool { ssh_worker({ name = "node 1", host = "10.0.0.1" }),
                                ssh_worker({ name = "node_1", host = "10.0.0.2" }) })
  lu.assertFalse(pcall(rasrun.pool, { ssh_worker({ name = "node 1" }), ssh_worker({ name = "node_1" }) }))
end

function TestPool:test_a_pool_wants_a_list_of_workers()
  for _, arg in ipairs({ H.local_worker("one", 1), { workers = { H.local_worker("two", 1) } } }) do
    local ok, err = pcall(rasrun.pool, arg)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "rasrun.pool: expected a list of workers: rasrun.pool { w1, w2, ... }")
  end
end

function TestPool:test_ssh_settings_are_checked_where_the_recipe_gives_them()
  local cases = {
    { { port = "abc" }, 'port must be a whole number from 1 to 65535, got "abc"' },
    { { port = 99999 }, "port must be a whole number from 1 to 65535, got 99999" },
    { { port = 0 }, "port must be a whole number from 1 to 65535, got 0" },
    { { io_timeout = "five" }, 'io_timeout must be a number of seconds >= 0, got "five"' },
    { { connect_timeout = -1 }, "connect_timeout must be a number of seconds >= 0, got -1" },
    { { keepalive = {} }, "keepalive must be a number of seconds >= 0" },
    { { host = 5 }, "host must be a host name or address, got 5" },
  }
  for _, c in ipairs(cases) do
    local ok, err = pcall(ssh_worker, c[1])
    lu.assertFalse(ok, c[2])
    lu.assertStrContains(err, c[2])
  end
  lu.assertEquals(ssh_worker({ port = 2222, io_timeout = 30 }).port, 2222)
  -- numbers as strings of digits, as os.getenv gives them
  local w = ssh_worker({ port = "2222", io_timeout = "30", keepalive = "5" })
  lu.assertEquals({ w.port, w.io_timeout, w.keepalive }, { 2222, 30, 5 })
  lu.assertEquals(math.type(w.port), "integer")
end

-- RemoteWorkers.json files give the port as a number or a string of one;
-- a worker that rasrun.worker refuses is skipped with its name first, as
-- the other skipped workers are.
function TestPool:test_workers_from_json_take_a_port_string_and_name_a_refused_worker()
  local file = H.tmpdir("json") .. "/RemoteWorkers.json"
  assert(fs.write(file, json.encode { workers = {
    { name = "n1", worker_type = "ssh", hostname = "127.0.0.1", port = "2222" },
    { name = "n2", worker_type = "ssh", hostname = "127.0.0.1", port = "ssh" },
    -- (said in the file's own terms)
    { name = "n3", worker_type = "ssh", hostname = "" },
    { name = "n4", worker_type = "ssh", hostname = "127.0.0.1", key_path = 5 },
    { name = "n5", worker_type = "ssh", hostname = "127.0.0.1", enabled = "false" },
    { name = "n6", worker_type = "ssh", hostname = "127.0.0.1", enabled = 0 },
    { name = "n7", worker_type = "ssh", hostname = "127.0.0.1", enabled = 1 },
  } }))
  local workers, skipped = rasrun.workers_from_json(file, { quiet = true, engine = { kind = "linux", home = "/opt/hecras/6.6" } })
  lu.assertEquals(#workers, 2)
  lu.assertEquals(workers[1].port, 2222)
  lu.assertEquals(workers[2].name, "n7")
  lu.assertEquals(skipped, {
    'worker "n2": port must be a whole number from 1 to 65535, got "ssh"',
    "worker \"n3\": missing field 'hostname'",
    'worker "n4": key_path must be a string or false, got 5',
    'worker "n5": enabled must be true or false, not "false"',
  })
end

function TestPool:test_an_engine_with_an_unknown_field_is_refused()
  local ok, err = pcall(H.local_worker, "here", 1, { engine = { kind = "linux", home = H.sim("linux"), version = "6.6" } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "unknown field engine.version (an engine has kind, home and preprocess)")
  ok, err = pcall(H.local_worker, "here", 1, { engine = { kind = "linux", home = H.sim("linux"), preprocess = "yes" } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "engine.preprocess must be true or false, got yes")
end

-- A local engine starts inside each attempt's work folder: a home given
-- relative to where the recipe runs (or under ~) is made absolute.
function TestPool:test_a_relative_engine_home_is_found_from_where_the_recipe_runs()
  local prj = project({ { title = "a", seconds = 0 } })
  local dir = H.tmpdir("cwd")
  assert(sys.run({ "cp", "-a", H.sim("linux"), dir .. "/hecras" }).code == 0)
  local recipe = dir .. "/relative.lua"
  assert(fs.write(recipe, table.concat({
    'local rasrun = require "rasrun"',
    'local w = rasrun.worker { type = "local", name = "here", engine = { kind = "linux", home = "hecras" } }',
    'print("home " .. w.engine.home)',
    ("local run = rasrun.pool { w }:run { project = %q, quiet = true, run_dir = %q }")
      :format(prj.path, dir .. "/run"),
    "print(run.results[1].status, run.results[1].reason)",
    "return run.ok and 0 or 1", "" }, "\n")))
  local r = H.rasrun({ "run", "relative.lua" }, { cwd = dir })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "home " .. dir .. "/hecras\n")
  lu.assertStrContains(r.stdout, "ok\tnil")
  local w = H.local_worker("tilde", 1, { engine = { kind = "linux", home = "~/hecras" } })
  lu.assertEquals(w.engine.home, os.getenv("HOME") .. "/hecras")
end

-- A worker whose engine is not where its home says is down, not a worker
-- that fails every plan in milliseconds and so uses up their retries.
function TestPool:test_a_worker_without_its_engine_is_down_and_the_plans_run_elsewhere()
  local prj = project({ { title = "a", seconds = 0.3 }, { title = "b", seconds = 0.3 },
                        { title = "c", seconds = 0.3 }, { title = "d", seconds = 0.3 } })
  local missing = H.tmpdir("nohome") .. "/6.6"
  local r = H.run(rasrun.pool { H.local_worker("good", 1),
                                H.local_worker("bad", 1, { engine = { kind = "linux", home = missing } }) },
    { project = prj, retries = 3, run_dir = prj.dir .. "/run" })
  lu.assertTrue(r.ok)
  for _, res in ipairs(r.results) do
    lu.assertEquals({ res.plan, res.status, res.worker, res.attempts }, { res.plan, "ok", "good", 1 })
  end
  local down
  for _, e in ipairs(H.journal(r.run_dir)) do
    if e.ev == "worker_down" and e.worker == "bad" then down = e.reason end
  end
  lu.assertEquals(down, "engine " .. missing .. "/bin/RasUnsteady cannot be run: "
    .. "No such file or directory; is engine.home right?")
  -- alone, it fails the plans at once, saying why, and runs nothing
  r = H.run(rasrun.pool { H.local_worker("bad", 1, { engine = { kind = "linux", home = missing } }) },
    { project = prj, retries = 3, force = true, run_dir = prj.dir .. "/run2" })
  for _, res in ipairs(r.results) do
    lu.assertEquals(res.status, "failed")
    lu.assertEquals(res.attempts, 0)
    lu.assertStrContains(res.reason, "no worker available: bad (engine " .. missing .. "/bin/RasUnsteady cannot be run")
  end
end

-- /proc shows a process's folder with symbolic links resolved: a daemon
-- left working in a slot folder reached through a link (a work folder
-- under a linked path, or a $TMPDIR that is one) is stopped all the same.
function TestPool:test_a_daemon_in_a_work_folder_reached_through_a_link_is_stopped()
  local home = H.engine_leaving_a_helper(H.tmpdir("engine"), true)
  local base = H.tmpdir("linked")
  assert(fs.mkdirs(base .. "/real"))
  assert(sys.run({ "ln", "-s", base .. "/real", base .. "/link" }).code == 0)
  local prj = project({ { title = "quick", seconds = 0.2 } })
  local r = H.run(rasrun.pool { H.local_worker("here", 1, { workdir = base .. "/link",
                                                          engine = { kind = "linux", home = home } }) },
    { project = prj, run_dir = prj.dir .. "/run" })
  lu.assertTrue(r.ok)
  H.wait_for(function() return #H.processes_under(home) == 0 end, 5, "the daemon to end")
end

-- A worker that never came up (its work folder cannot be made) has no
-- slot folders to remove at the end: nothing is said of them.
function TestPool:test_a_worker_that_never_came_up_ends_quietly()
  local prj = project({ { title = "a", seconds = 0 } })
  local dir = H.tmpdir("quiet")
  assert(fs.write(dir .. "/afile", "not a folder\n"))
  local recipe = dir .. "/quiet.lua"
  assert(fs.write(recipe, table.concat({
    'local rasrun = require "rasrun"',
    'local e = { kind = "linux", home = rasrun.sim.home("linux") }',
    ('local pool = rasrun.pool { rasrun.worker { type = "local", name = "bad", workdir = %q, engine = e },')
      :format(dir .. "/afile/work"),
    '  rasrun.worker { type = "local", name = "good", engine = e } }',
    ("local run = pool:run { project = %q, progress = \"plain\", run_dir = %q }"):format(prj.path, dir .. "/run"),
    "return run.ok and 0 or 1", "" }, "\n")))
  local r = H.rasrun({ "run", recipe })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "bad")
  lu.assertNotStrContains(r.stderr, "cannot remove")
end

-- An output the project folder cannot take (a read-only mount here; a full
-- disk likewise) is not lost with the work folder: it is kept where a
-- failed attempt's files go, and the reason says where.
function TestPool:test_a_result_the_project_cannot_take_is_kept_in_the_run_folder()
  H.need_root()
  local mnt = H.tmpdir("readonly")
  lu.assertEquals(sys.run({ "mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt }).code, 0)
  local ok, err = pcall(function()
    local prj = rasrun.project.open(H.project(mnt .. "/prj", { { title = "a", seconds = 0 } }))
    lu.assertEquals(sys.run({ "mount", "-o", "remount,ro", mnt }).code, 0)
    local run_dir = H.tmpdir("run") .. "/run"
    local r = H.run(rasrun.pool { H.local_worker("here", 1, { workdir = H.tmpdir("work") }) },
      { project = prj, run_dir = run_dir })
    local res = H.result(r, "01")
    lu.assertEquals(res.status, "failed")
    local kept = run_dir .. "/attempts/Sample_p01-a1"
    lu.assertEquals(res.reason, "staging out: cannot bring Sample.p01.hdf back into " .. prj.dir
      .. ": Read-only file system; the engine's outputs are kept in " .. kept)
    lu.assertTrue(rasrun.checks.standard {}(kept .. "/Sample.p01.hdf").ok)
  end)
  sys.run({ "umount", mnt })
  assert(ok, err)
end

-- A history damaged by hand (a time that is not a number) is forgotten
-- entry by entry: "longest_first" still orders the plans, and the next
-- save leaves the bad entries out.
function TestPool:test_a_damaged_history_entry_is_forgotten()
  local prj = project({ { title = "a", seconds = 0 }, { title = "b", seconds = 0 }, { title = "c", seconds = 0 } })
  assert(fs.mkdirs(prj.dir .. "/.rasrun"))
  assert(fs.write(prj.dir .. "/.rasrun/history.json", '{"01":"x","02":{"a":1},"03":5}'))
  local r = H.run(rasrun.pool { H.local_worker("here", 1) },
    { project = prj, order = "longest_first", run_dir = prj.dir .. "/run" })
  lu.assertTrue(r.ok)
  local h = json.decode(H.read(prj.dir .. "/.rasrun/history.json"))
  for _, plan in ipairs({ "01", "02", "03" }) do lu.assertEquals(math.type(h[plan]) ~= nil, true, plan) end
end

function TestPool:test_project_and_projects_together_are_refused()
  local prj = project({ { title = "a", seconds = 0 } })
  lu.assertErrorMsgContains("pool:run: give project or projects, not both", function()
    H.run(rasrun.pool { H.local_worker("here", 1) }, { project = prj, projects = { prj } })
  end)
end

-- Only the engine proper is looked for at the start: a preprocessor that
-- some plans need (their geometry changed) and that is missing fails just
-- those plans' attempts, naming it; the worker stays up for the others.
function TestPool:test_a_missing_preprocessor_fails_only_the_plans_that_need_it()
  local home = H.tmpdir("engine") .. "/hecras"
  assert(sys.run({ "cp", "-a", H.sim("linux"), home }).code == 0)
  assert(os.remove(home .. "/bin/RasGeomPreprocess"))
  local prj = project({ { title = "a", seconds = 0 }, { title = "b", seconds = 0 },
                        { title = "c", seconds = 0, geom = "g02" } })
  local geom = prj:plan("01").geometry
  assert(sys.run({ "touch", "-d", "@" .. math.floor(sys.now() + 1), geom.file }).code == 0)
  local r = H.run(rasrun.pool { H.local_worker("here", 1, { engine = { kind = "linux", home = home } }) },
    { project = prj, run_dir = prj.dir .. "/run" })
  for _, plan in ipairs({ "01", "02" }) do
    lu.assertEquals(H.result(r, plan).status, "failed")
    lu.assertStrContains(H.result(r, plan).reason, "cannot start " .. home .. "/bin/RasGeomPreprocess")
  end
  lu.assertEquals(H.result(r, "03").status, "ok", H.result(r, "03").reason)
end
