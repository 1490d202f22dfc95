-- The rasrun command line, run as a user would: bin/rasrun in a subprocess.
local lu = require "luaunit"
local fs = require "rasrun.fs"
local sys = require "rasrun.sys"
local json = require "rasrun.json"
local H = require "helpers"

TestCli = {}

function TestCli:tearDown() H.cleanup() end

function TestCli:test_help_and_version()
  local r = H.rasrun({ "--help" })
  lu.assertEquals(r.code, 0)
  lu.assertStrContains(r.stdout, "usage: rasrun COMMAND")
  for _, cmd in ipairs({ "run", "check", "plans", "repl", "resume", "workers" }) do
    r = H.rasrun({ cmd, "--help" })
    lu.assertEquals(r.code, 0, cmd)
    lu.assertStrContains(r.stdout, "usage: rasrun " .. cmd)
  end
  r = H.rasrun({ "--version" })
  lu.assertStrMatches(r.stdout, "rasrun %d+%.%d+%.%d+ %(Lua 5%.4%.%d+%)\n")
  -- as a usage error (status 2), the help goes to stderr
  for _, args in ipairs({ {}, { "resume" }, { "workers" } }) do
    r = H.rasrun(args)
    lu.assertEquals(r.code, 2)
    lu.assertEquals(r.stdout, "")
    lu.assertStrContains(r.stderr, "usage: rasrun ")
  end
  r = H.rasrun({ "frobnicate" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, 'unknown command "frobnicate"')
end

function TestCli:test_check_lines_and_exit_status()
  local good = H.data .. "/rashdf/FLODENCR.p01.hdf"
  local bad = H.data .. "/HEC-RAS-AUTO/tmp_ex1fresh_failed/EX1.p01.hdf"
  local r = H.rasrun({ "check", good })
  lu.assertEquals(r.code, 0)
  lu.assertEquals(r.stdout, "PASS " .. good .. "\n")
  r = H.rasrun({ "check", good, bad })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stdout, "FAIL " .. bad .. ": solution: no Unsteady or Steady results")
  r = H.rasrun({ "check", "--max-volume-error", "abc", good })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--max-volume-error needs a positive number")
  r = H.rasrun({ "check", "/no/such/file.hdf" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stdout, "FAIL /no/such/file.hdf: file: /no/such/file.hdf: No such file")
  r = H.rasrun({ "check", "--bogus", good })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "unknown option --bogus")
end

function TestCli:test_check_json()
  local files = { H.data .. "/pyHMT2D/backwater_curve.p01.hdf", H.data .. "/rashdf/BaldEagleDamBrk.p18.hdf" }
  local r = H.rasrun({ "check", "--json", files[1], files[2] })
  lu.assertEquals(r.code, 1)
  local doc = assert(json.decode(r.stdout))
  lu.assertEquals(#doc, 2)
  lu.assertEquals(doc[1].file, files[1])
  lu.assertTrue(doc[1].ok)
  lu.assertFalse(doc[2].ok)
  local names = {}
  for _, c in ipairs(doc[1].checks) do names[#names + 1] = c.name .. "=" .. tostring(c.ok) end
  lu.assertEquals(names, { "file=true", "solution=true", "volume=true", "messages=true" })
  lu.assertStrContains(doc[1].checks[3].detail, "volume accounting error")
end

function TestCli:test_check_since()
  local f = H.data .. "/rashdf/FLODENCR.p01.hdf"
  local r = H.rasrun({ "check", "--json", "--since", "2100-01-01 00:00", f })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stdout, "stale: written ")
  lu.assertStrContains(r.stdout, ", before --since 2100-01-01 00:00:00") -- no engine here
  -- a fresh one is said to be written after that time, not "by this run"
  local d = H.tmpdir("cli")
  assert(fs.write(d .. "/new.hdf", H.read(f)))
  r = H.rasrun({ "check", "--json", "--since", "2000-01-01 00:00", d .. "/new.hdf" })
  lu.assertStrContains(r.stdout, "written after 2000-01-01 00:00")
  lu.assertNotStrContains(r.stdout, "this run")
end

function TestCli:test_check_on_damaged_files_never_crashes()
  local d = H.tmpdir("cli")
  local data = H.read(H.data .. "/pyHMT2D/Muncie2DOnly_SI.p01.hdf")
  fs.write(d .. "/cut.hdf", data:sub(1, 5000))
  fs.write(d .. "/text.hdf", "hello")
  math.randomseed(7)
  local junk = {}
  for i = 1, 4096 do junk[i] = string.char(math.random(0, 255)) end
  fs.write(d .. "/junk.hdf", table.concat(junk))
  local r = H.rasrun({ "check", d .. "/cut.hdf", d .. "/text.hdf", d .. "/junk.hdf" })
  lu.assertEquals(r.code, 1, r.stderr)
  lu.assertStrContains(r.stdout, "FAIL " .. d .. "/cut.hdf: file: ")
  lu.assertStrContains(r.stdout, "FAIL " .. d .. "/text.hdf: file: " .. d .. "/text.hdf: not an HDF5 file")
  lu.assertStrContains(r.stdout, "FAIL " .. d .. "/junk.hdf: file: ")
  lu.assertEquals(r.stderr, "")
end

-- A parent that starts rasrun in another folder without setting PWD (Python's
-- subprocess with cwd=) leaves a PWD naming its own: relative paths still
-- mean the real working folder.
function TestCli:test_relative_paths_follow_the_real_working_folder()
  local d = H.tmpdir("cli")
  H.project(d .. "/models/Creek")
  local r = H.rasrun({ "plans", "models/Creek/Sample.prj" }, { cwd = d, env = { PWD = "/" } })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Project Sample.prj")
end

function TestCli:test_plans_table_and_json()
  local muncie = H.data .. "/HEC-RAS-AUTO/Example_Projects_6_6/Muncie.prj"
  local r = H.rasrun({ "plans", muncie })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Project Muncie.prj: Muncie 2D Flow Area")
  lu.assertStrMatches(r.stdout, ".*\n01 .-missing: Muncie%.prj: plan p01 is listed.*")
  lu.assertStrMatches(r.stdout, ".*\n04 +Unsteady Run with 2D 50ft User n Va~ 50ft User n Regions +g04 +u01 +no result\n.*")
  r = H.rasrun({ "plans", "--json", muncie })
  local doc = assert(json.decode(r.stdout))
  lu.assertEquals(#doc.plans, 3)
  lu.assertTrue(doc.plans[1].missing)
  lu.assertEquals(doc.plans[3].state, "none")
  lu.assertEquals(doc.plans[3].geometry, "g04")
  r = H.rasrun({ "plans", "/nope.prj" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "/nope.prj: no such project file")
  -- titles as Windows HEC-RAS writes them (Windows-1252) print as UTF-8,
  -- cut and padded by characters
  local d = H.tmpdir("cli")
  assert(fs.write(d .. "/T.prj", "Proj Title=Caf\xe9 \x96 Cr\xe9ek\r\nPlan File=p01\r\n"))
  assert(fs.write(d .. "/T.p01", "Plan Title=R\xe9sum\xe9 " .. ("\xe9"):rep(40) ..
    "\r\nShort Identifier=x\xe9\r\nGeom File=g01\r\nFlow File=u01\r\n"))
  r = H.rasrun({ "plans", d .. "/T.prj" })
  lu.assertStrContains(r.stdout, "Project T.prj: Café – Créek\n")
  lu.assertStrContains(r.stdout, "\n01    Résumé " .. ("é"):rep(28) .. "~ xé                   g01")
end

function TestCli:test_plans_result_states()
  local d = H.tmpdir("cli")
  H.project(d, { { title = "a", seconds = 0.05 }, { title = "b", seconds = 0.05 } })
  local r = require("rasrun.sys").run({ H.sim("windows") .. "/Ras.exe", "-c", d .. "/Sample.prj",
                                         d .. "/Sample.p01" }, { cwd = d })
  lu.assertEquals(r.code, 0, r.stderr)
  r = H.rasrun({ "plans", d .. "/Sample.prj" })
  lu.assertStrMatches(r.stdout, ".*\n01 .* up to date\n02 .* no result\n")
  -- newer than its inputs, but failed: not up to date
  local good = H.read(d .. "/Sample.p01.hdf")
  assert(fs.write(d .. "/Sample.p02.hdf", H.read(H.data .. "/HEC-RAS-AUTO/tmp_ex1fresh_failed/EX1.p01.hdf")))
  r = H.rasrun({ "plans", d .. "/Sample.prj" })
  lu.assertStrMatches(r.stdout, ".*\n02 .* result fails its checks %(solution: no Unsteady or Steady results in the file.*")
  assert(fs.write(d .. "/Sample.p02.hdf", good))
  fs.touch(d .. "/Sample.u01", require("rasrun.sys").now())
  r = H.rasrun({ "plans", d .. "/Sample.prj" })
  lu.assertStrContains(r.stdout, "result out of date (Sample.u01 is newer than the result)")
end

function TestCli:test_run_passes_arguments_and_reports_errors()
  local d = H.tmpdir("cli")
  fs.write(d .. "/args.lua", "print(arg[0], ...)\nreturn tonumber(arg[2]) or 0\n")
  local r = H.rasrun({ "run", d .. "/args.lua", "hello", "3" })
  lu.assertEquals(r.code, 3)
  lu.assertEquals(r.stdout, d .. "/args.lua\thello\t3\n")
  fs.write(d .. "/bad.lua", "local x = 1\nlocal function f() error('broken recipe') end\nf()\n")
  r = H.rasrun({ "run", d .. "/bad.lua" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, d .. "/bad.lua:2: broken recipe")
  lu.assertStrContains(r.stderr, "stack traceback:")
  lu.assertStrContains(r.stderr, "bad.lua:3: in main chunk")
  lu.assertNotStrContains(r.stderr, "cli.lua") -- rasrun's own frames are not the recipe's
  lu.assertNotStrContains(r.stderr, "[C]")
  -- (a recipe in a folder named rasrun is a recipe all the same)
  assert(fs.mkdirs(d .. "/rasrun"))
  assert(fs.write(d .. "/rasrun/bad.lua", H.read(d .. "/bad.lua")))
  r = H.rasrun({ "run", d .. "/rasrun/bad.lua" })
  lu.assertStrContains(r.stderr, "rasrun/bad.lua:3: in main chunk")
  -- misusing rasrun's API: the message names the recipe's line, and that is all
  fs.write(d .. "/misuse.lua", "local rasrun = require 'rasrun'\n" ..
    "rasrun.worker { type = 'local', name = 'x', slots = 1, bogus = 2 }\n")
  r = H.rasrun({ "run", d .. "/misuse.lua" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "misuse.lua:2: ")
  lu.assertStrContains(r.stderr, "bogus")
  lu.assertNotStrContains(r.stderr, "stack traceback")
  -- an error value that is not a string is named as such, not as an
  -- address; a recipe is text: a compiled chunk (or a file that looks like
  -- one) is refused; a syntax error names its line
  for _, case in ipairs({ { "table.lua", "error({ code = 1 })\n", "(error object is a table value)\n" },
                          { "binary.lua", "\27Lua junk", "binary.lua: a compiled Lua chunk: a recipe is Lua source text" },
                          { "syntax.lua", "local = 3\n", "syntax.lua:1:" } }) do
    fs.write(d .. "/" .. case[1], case[2])
    r = H.rasrun({ "run", d .. "/" .. case[1] })
    lu.assertEquals(r.code, 2, case[1])
    lu.assertStrContains(r.stderr, case[3])
  end
  r = H.rasrun({ "run", "no-such-recipe" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, 'no recipe "no-such-recipe"')
  -- rasrun.fail: a message for the user, its status, no traceback
  fs.write(d .. "/fail.lua", "require('rasrun').fail('fail.lua: models/X.prj not found', 3)\n")
  r = H.rasrun({ "run", d .. "/fail.lua" })
  lu.assertEquals(r.code, 3)
  lu.assertEquals(r.stderr, "fail.lua: models/X.prj not found\n")
  -- with no message, only the status: nothing is printed ("nil" was)
  fs.write(d .. "/quiet.lua", "require('rasrun').fail()\n")
  r = H.rasrun({ "run", d .. "/quiet.lua" })
  lu.assertEquals({ r.code, r.stderr }, { 1, "" })
  -- a status the shell cannot see as given is a usage error, said so
  for _, bad in ipairs({ "return 2.5", "return 300", "return -1", "require('rasrun').fail('x', 1.5)" }) do
    fs.write(d .. "/status.lua", bad .. "\n")
    r = H.rasrun({ "run", d .. "/status.lua" })
    lu.assertEquals(r.code, 2, bad)
    lu.assertStrContains(r.stderr, "is not a whole number from 0 to 255", bad)
    lu.assertNotStrContains(r.stderr, "PANIC", bad)
  end
end

function TestCli:test_the_sample_recipe_teaches_its_arguments()
  local r = H.rasrun({ "run", "sample", "--help" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "usage: rasrun run sample [--dir DIR]")
  lu.assertStrContains(r.stdout, "--force")
  local dir = H.tmpdir("cli") .. "/sample"
  for _, bad in ipairs({ { "--bogus" }, { "--slots" }, { "--slots", "x" }, { "--engine", "mac" },
                         { "--plans", "07" }, { "--plans", "abc" } }) do
    r = H.rasrun({ "run", "sample", "--dir", dir, table.unpack(bad) })
    lu.assertEquals(r.code, 2, table.concat(bad, " "))
    lu.assertStrContains(r.stderr, "sample: ")
    lu.assertNotStrContains(r.stderr, "stack traceback")
  end
  -- a --dir that cannot be a folder (a file is there): said plainly
  local file = H.tmpdir("cli") .. "/a-file"
  assert(fs.write(file, "x"))
  r = H.rasrun({ "run", "sample", "--dir", file })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "sample: cannot create folder " .. file)
  lu.assertStrContains(r.stderr, "--dir chooses a folder you can write")
  lu.assertNotStrContains(r.stderr, "stack traceback")
  -- what `rasrun run --help` shows as its example
  lu.assertStrContains(H.rasrun({ "run", "--help" }).stdout, "rasrun run sample --plans 01,03")
  r = H.rasrun({ "run", "sample", "--dir", dir, "--plans", "01,03", "--slots", "2" },
    { env = { FAKE_RAS_SECONDS = "0" } })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "PASS " .. dir .. "/Sample.p03.hdf")
  lu.assertNotStrContains(r.stdout, "Sample.p02.hdf")
  r = H.rasrun({ "run", "remote-workers" })
  lu.assertEquals(r.code, 2)
  lu.assertEquals(r.stderr, "usage: rasrun run remote-workers RemoteWorkers.json PROJECT.prj [PLAN...]\n")
  -- a plan listed twice, and the remote-workers recipe's usage mistakes:
  -- said plainly, exit status 2
  r = H.rasrun({ "run", "sample", "--dir", dir, "--plans", "01,1" })
  lu.assertEquals(r.code, 2)
  lu.assertEquals(r.stderr, "sample: --plans: plan 01 is listed twice (01 and 1)\n")
  fs.write(dir .. "/Workers.json", json.encode({ workers = {
    { name = "here", worker_type = "local", ras_exe_path = H.sim("linux") .. "/bin/RasUnsteady" } } }))
  fs.write(dir .. "/NoUsable.json", json.encode({ workers = { { name = "w", worker_type = "docker" } } }))
  lu.assertEquals(H.rasrun({ "run", "remote-workers", "--help" }).code, 0)
  for _, case in ipairs({
    { { dir .. "/None.json", dir .. "/Sample.prj" }, "workers_from_json: cannot read " .. dir .. "/None.json" },
    { { dir .. "/Workers.json", dir .. "/None.prj" }, dir .. "/None.prj: no such project file" },
    { { dir .. "/Workers.json", dir .. "/Sample.prj", "09" }, dir .. "/Sample.prj has no plan 09" },
    { { dir .. "/Workers.json", dir .. "/Sample.prj", "01", "1" }, "plan 01 is given twice" },
    { { dir .. "/NoUsable.json", dir .. "/Sample.prj" }, dir .. "/NoUsable.json: no usable worker (1 skipped)" },
  }) do
    r = H.rasrun({ "run", "remote-workers", table.unpack(case[1]) })
    lu.assertEquals(r.code, 2, case[2])
    lu.assertStrContains(r.stderr, case[2])
    lu.assertNotStrContains(r.stderr, "stack traceback")
  end
  -- `rasrun workers` probes a RemoteWorkers.json's workers: no project needed
  r = H.rasrun({ "workers", "remote-workers", dir .. "/Workers.json" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "OK   here (local")
  r = H.rasrun({ "workers", "remote-workers" })
  lu.assertEquals({ r.code, r.stderr }, { 2, "usage: rasrun workers remote-workers RemoteWorkers.json\n" })
end

-- A file a recipe has open (Lua's io.open sets no close-on-exec) does not
-- reach the commands it runs, nor the engines.
function TestCli:test_a_recipes_open_files_do_not_reach_its_children()
  local d = H.tmpdir("cli")
  fs.write(d .. "/fds.lua", ([[
local rasrun = require "rasrun"
local f = io.open(%q, "w")
io.write(rasrun.sys.run({ "sh", "-c", "ls /proc/$$/fd" }).stdout)
f:close()
]]):format(d .. "/open.txt"))
  local r = H.rasrun({ "run", d .. "/fds.lua" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, "0\n1\n2\n")
end

-- rasrun survives a closed output pipe (SIGPIPE caught), but what a recipe
-- starts with os.execute or io.popen gets SIGPIPE's default: `yes | head`
-- ends as it does in a shell.
function TestCli:test_a_recipes_commands_get_sigpipes_default()
  local d = H.tmpdir("cli")
  assert(fs.write(d .. "/pipe.lua", [[
local f = io.popen("grep SigIgn /proc/self/status")
print(f:read("a"))
f:close()
print(os.execute("yes | head -c 1 >/dev/null"))
]]))
  local r = H.rasrun({ "run", d .. "/pipe.lua" }, { timeout = 30 })
  lu.assertEquals(r.code, 0, r.stderr)
  local ignored = tonumber(r.stdout:match("SigIgn:%s*(%x+)"), 16)
  lu.assertEquals(ignored & (1 << 12), 0, "SIGPIPE (13) ignored in a child")
  lu.assertNotStrContains(r.stderr, "Broken pipe")
end

-- Runs started in one second by separate processes get ids of their own:
-- their random part comes from the kernel (math.random's seed is the time
-- and an address, which a sanitizer's allocator makes the same each time).
function TestCli:test_run_ids_of_processes_started_together_differ()
  local d = H.tmpdir("cli")
  assert(fs.write(d .. "/id.lua", 'print(require("rasrun.sys").random32(), math.random(0, 0xffffffff))\n'))
  local seen = {}
  for _ = 1, 4 do
    local r = H.rasrun({ "run", d .. "/id.lua" })
    lu.assertEquals(r.code, 0, r.stderr)
    local id = r.stdout:match("^(%d+)")
    lu.assertNil(seen[id], "the same random bits twice: " .. tostring(id))
    seen[id] = true
  end
end

-- A copy of the program away from its Lua modules says what is missing.
function TestCli:test_a_copied_program_says_it_cannot_find_its_modules()
  local d = H.tmpdir("cli")
  assert(fs.mkdirs(d .. "/bin"))
  lu.assertEquals(sys.run({ "cp", H.bin, d .. "/bin/rasrun" }).code, 0)
  for _, cmd in ipairs({ "--help", "repl" }) do
    local r = sys.run({ d .. "/bin/rasrun", cmd }, { env = { LUA_PATH = ";;" } })
    lu.assertEquals(r.code, 2)
    lu.assertStrContains(r.stderr, "rasrun: cannot find its Lua modules")
    lu.assertNotStrContains(r.stderr, "package.preload")
  end
end

-- Values that are not what an option takes are refused, naming it.
function TestCli:test_nonsense_arguments_are_refused()
  local file = H.data .. "/rashdf/FLODENCR.p01.hdf"
  for _, case in ipairs({
    { { "check", "--max-volume-error", "1e999", file }, "--max-volume-error needs a positive number" },
    { { "check", "--since", "2024-99-99 99:99", file }, "--since needs epoch seconds" },
    { { "check", "--since", "2024-01-01 10:3045", file }, "--since needs epoch seconds" },
    { { "check", "--since", "1e300", file }, "--since needs epoch seconds" },
    { { "help", "nosuch" }, 'no command "nosuch"' },
    { { "repl", "--bogus" }, "repl takes no arguments, got --bogus" },
  }) do
    local r = H.rasrun(case[1])
    lu.assertEquals(r.code, 2, table.concat(case[1], " "))
    lu.assertStrContains(r.stderr, case[2])
  end
  -- after "--", "--help" is a file name
  local r = H.rasrun({ "check", "--", "--help" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stdout, "FAIL --help: file: --help: No such file or directory")
  lu.assertEquals(H.rasrun({ "check", "--since", "2024-02-29 10:30", file }).code, 0)
  -- a folder is not a result that failed its checks, but a wrong argument
  r = H.rasrun({ "check", H.data })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stdout, "FAIL " .. H.data .. ": ")
  -- a recipe with no pool:run has no workers to probe
  local recipe = H.tmpdir("cli") .. "/nopool.lua"
  assert(fs.write(recipe, 'print("no pool")\n'))
  r = H.rasrun({ "workers", recipe })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, recipe .. " ended without reaching a pool:run: no workers to probe")
  -- probing the sample's pool writes no project; asked for its help, it gives it
  local here = H.tmpdir("probe")
  r = H.rasrun({ "workers", "sample" }, { cwd = here })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "OK   here (local, ")
  lu.assertEquals(fs.list(here), {})
  -- a work folder that cannot be made fails the probe, as it would fail the run
  assert(fs.write(here .. "/afile", "not a folder"))
  r = H.rasrun({ "workers", "sample" }, { cwd = here, env = { TMPDIR = here .. "/afile" } })
  lu.assertEquals(r.code, 1, r.stdout)
  lu.assertStrContains(r.stdout, "cannot make the work folder")
  os.remove(here .. "/afile")
  -- nor one it cannot write in (a read-only mount: root too is refused there)
  local ro = H.tmpdir("ro")
  if sys.run({ "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", ro }).code == 0 then
    assert(fs.mkdirs(ro .. "/rasrun-" .. (os.getenv("USER") or ("uid" .. sys.uid()))))
    local remounted = sys.run({ "mount", "-o", "remount,ro", ro }).code == 0
    r = H.rasrun({ "workers", "sample" }, { cwd = here, env = { TMPDIR = ro } })
    sys.run({ "umount", ro })
    if remounted then
      lu.assertEquals(r.code, 1, r.stdout)
      lu.assertStrContains(r.stdout, "cannot write in the work folder")
    end
  end
  r = H.rasrun({ "workers", "sample", "--help" }, { cwd = here })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "usage: rasrun run sample")
  lu.assertEquals(r.stderr, "")
end

-- Ctrl-C or SIGTERM while a recipe waits for a command: the command (in a
-- process group of its own, out of the terminal's reach) is stopped too.
-- A timeout does not wait for a process that escaped the command's tree
-- and holds its output open.
function TestCli:test_a_signal_during_sys_run_stops_the_command()
  local sys = require "rasrun.sys"
  local d = H.tmpdir("cli")
  fs.write(d .. "/wait.lua", ([[
require("rasrun.sys").run({ "sh", "-c", "echo $$ > %s; exec sleep 25" })
]]):format(d .. "/pid"))
  for _, sig in ipairs({ "INT", "TERM" }) do
    os.remove(d .. "/pid")
    local pid = assert(H.spawn({ H.bin, "run", d .. "/wait.lua" }))
    H.wait_for(function() return fs.isfile(d .. "/pid") and #H.read(d .. "/pid") > 1 end, 10, "the command")
    local child = math.tointeger(tonumber(H.read(d .. "/pid")))
    sys.kill(pid, sig)
    lu.assertEquals(sys.wait(pid, 10), sig == "INT" and 130 or 143)
    local gone = pcall(H.wait_for, function() return not sys.alive(child) end, 5, "the command to end")
    if not gone then sys.kill(child, "KILL") end
    lu.assertTrue(gone, "the command outlived rasrun (" .. sig .. ")")
  end
  local t0 = sys.monotonic()
  local r = sys.run({ "sh", "-c", "setsid sleep 6 & echo $! > " .. d .. "/escaped; echo hi" }, { timeout = 1 })
  lu.assertTrue(sys.monotonic() - t0 < 4, ("%.1f s"):format(sys.monotonic() - t0))
  lu.assertTrue(r.timed_out)
  lu.assertEquals(r.stdout, "hi\n")
  sys.kill(math.tointeger(tonumber(H.read(d .. "/escaped"))), "KILL")
end

-- sys and fs take what they are given, or say what is wrong with it.
function TestCli:test_sys_and_fs_arguments()
  local sys = require "rasrun.sys"
  local env = {}
  for i = 1, 70 do env["RASRUN_TEST_VAR_" .. i] = tostring(i) end
  local r = sys.run({ "sh", "-c", "env | grep -c '^RASRUN_TEST_VAR_'" }, { env = env })
  lu.assertEquals(r.stdout, "70\n")
  lu.assertErrorMsgContains("a process id must be a number above 0", sys.kill, 0, "TERM")
  lu.assertErrorMsgContains("a process id must be a number above 0", sys.kill_tree, -1, "KILL")
  lu.assertFalse(sys.alive(0))
  lu.assertErrorMsgContains("the most bytes to read must be 0 or more", fs.read, H.root .. "/README.md", -1)
end

function TestCli:test_recipe_path_and_site_modules()
  local d = H.tmpdir("cli")
  fs.mkdirs(d .. "/site")
  fs.write(d .. "/site/mysite.lua", "return { pool_name = 'team-pool' }\n")
  fs.write(d .. "/site/hello.lua", "print(require('mysite').pool_name)\n")
  local r = H.rasrun({ "run", "hello" }, { env = { RASRUN_PATH = d .. "/site" } })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, "team-pool\n")
  -- a name in the current folder, without its .lua, as on the path
  fs.write(d .. "/storms.lua", "print('storms')\n")
  r = H.rasrun({ "run", "storms" }, { cwd = d })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, "storms\n")
end

function TestCli:test_the_sample_recipe_end_to_end()
  local d = H.tmpdir("sample")
  local r = H.rasrun({ "run", "sample", "--dir", d .. "/s", "--slots", "2" },
    { env = { FAKE_RAS_SECONDS = "0.2" }, timeout = 120 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Writing the sample project into " .. d .. "/s")
  for i = 1, 4 do lu.assertStrContains(r.stdout, ("PASS %s/s/Sample.p%02d.hdf"):format(d, i)) end
  lu.assertStrContains(r.stderr, "4 plans: 4 ok, 0 failed, 0 skipped, 0 cancelled")
  -- a second run skips what is up to date
  r = H.rasrun({ "run", "sample", "--dir", d .. "/s" }, { timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "4 skipped")
end

function TestCli:test_install_finds_its_modules_without_environment()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local prefix = H.tmpdir("install")
  local r = require("rasrun.sys").run({ "make", "-s", "install", "PREFIX=" .. prefix }, { cwd = H.root, timeout = 300 })
  lu.assertEquals(r.code, 0, r.stderr)
  local bin = prefix .. "/bin/rasrun"
  -- from another folder, with a clean environment apart from PATH
  r = require("rasrun.sys").run({ bin, "check", H.data .. "/rashdf/FLODENCR.p01.hdf" },
    { cwd = prefix, env = { LUA_PATH = false, LUA_CPATH = false, RASRUN_PATH = false } })
  lu.assertEquals(r.code, 0, r.stderr)
  r = require("rasrun.sys").run({ bin, "run", "sample", "--dir", prefix .. "/s" },
    { cwd = prefix, env = { FAKE_RAS_SECONDS = "0.1" }, timeout = 120 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "PASS " .. prefix .. "/s/Sample.p04.hdf")
  -- the README's links lead to the installed documents
  local doc = prefix .. "/share/doc/rasrun"
  for link in H.read(doc .. "/README.md"):gmatch("%]%(([%w_/.-]+%.md)%)") do
    lu.assertTrue(fs.isfile(doc .. "/" .. link), link)
  end
end

TestRepl = {}

function TestRepl:tearDown() H.cleanup() end

function TestRepl:test_piped_statements()
  local r = H.rasrun({ "repl" }, { input = table.concat({
    "x = 20 + 1", "x * 2", "function twice(v)", "  return v * 2", "end", "twice(x)",
    "error('oops')", "rasrun.path.join('a', 'b')", "{ a = 1, list = { 1, 2 } }", "" }, "\n") })
  lu.assertEquals(r.code, 1) -- one statement raised
  lu.assertEquals(r.stdout, '42\n42\n"a/b"\n{ a = 1, list = { 1, 2 } }\n')
  lu.assertStrContains(r.stderr, "stdin:1: oops")
end

-- Errors meant for the user (rasrun.fail, what pool:run cannot help) show
-- their message in the REPL too.
function TestRepl:test_user_errors_show_their_message()
  local r = H.rasrun({ "repl" }, { input = table.concat({
    'p = rasrun.pool { rasrun.worker { type = "local", engine = { kind = "linux", home = "/x" } } }',
    'p:run { project = "nope/X.prj" }', 'rasrun.fail("my message")', "" }, "\n") })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "pool:run: nope/X.prj: no such project file")
  lu.assertStrContains(r.stderr, "my message")
  lu.assertNotStrContains(r.stderr, "error object")
end

-- Misusing rasrun's API in the REPL: the message, and no traceback of
-- rasrun's own frames; an error in the user's function keeps theirs.
function TestRepl:test_errors_show_the_users_frames_only()
  local r = H.rasrun({ "repl" }, { input = table.concat({
    'w = rasrun.worker { type = "local", bogus = 1 }',
    'local function f() error("deep") end f()', "" }, "\n") })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "unknown field 'bogus'")
  lu.assertStrContains(r.stderr, "stdin:1: deep\nstack traceback:\n\tstdin:1: in local 'f'")
  lu.assertNotStrContains(r.stderr, "pool.lua")
  lu.assertNotStrContains(r.stderr, "[C]")
end

-- Input that ends inside a statement: its syntax error, not garbage.
function TestRepl:test_input_ending_mid_statement()
  local r = H.rasrun({ "repl" }, { input = "x = 1\nfor i = 1, 2 do\nprint(i)\n" })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "'end' expected (to close 'for' at line 1) near <eof>")
  lu.assertNotStrContains(r.stderr, "(null)")
end

function TestRepl:test_terminal_session_with_history()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local home = H.tmpdir("home")
  -- script(1) gives the REPL a pseudo-terminal: prompts, libedit, history.
  local input = "1 + 1\nfor i = 1, 2 do\nprint('line', i)\nend\n"
  local r = require("rasrun.sys").run({ "script", "-qefc", H.bin .. " repl", "/dev/null" },
    { input = input, env = { HOME = home, TERM = "dumb" }, timeout = 30 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "rasrun> ")
  lu.assertStrContains(r.stdout, ">> ")  -- the continuation prompt
  lu.assertStrContains(r.stdout, "line\t2")
  -- libedit's history file encodes spaces as \040
  local hist = H.read(home .. "/.rasrun_history"):gsub("\\040", " ")
  lu.assertStrContains(hist, "1 + 1")
end

-- Ctrl-C at the prompt drops what was being typed, a half line or a
-- statement left incomplete, and the session goes on. Each keystroke waits
-- for the REPL's answer to the one before (bounded: 30 s in all). script(1)
-- runs its command with $SHELL -c: exec, for a dash that stayed as the REPL's
-- parent would take the Ctrl-Cs too and end with them (exit 130).
function TestRepl:test_ctrl_c_at_the_prompt_drops_the_statement()
  if H.fast then lu.skip("RASRUN_TEST_FAST=1") end
  local d = H.tmpdir("repl")
  local driver = [=[
out=$1
until_seen() { # until_seen TEXT COUNT
  i=0
  while [ "$(grep -o -F -- "$1" "$out" | wc -l)" -lt "$2" ]; do
    i=$((i + 1)); [ $i -gt 300 ] && exit 1; sleep 0.1
  done
}
until_seen 'rasrun> ' 1; printf 'x = 1 +\n'
until_seen '>> ' 1;      printf '\003'
until_seen 'rasrun> ' 2; printf '2 +'
until_seen '2 +' 1;      printf '\003'
until_seen 'rasrun> ' 3; printf 'print(x, 40 + 2)\n'
until_seen '42' 1;       printf '\004'
]=]
  assert(fs.write(d .. "/driver.sh", driver))
  local r = require("rasrun.sys").run({ "sh", "-c",
    'sh "$1" "$2" | script -qefc "exec $3 repl" /dev/null > "$2"', "sh", d .. "/driver.sh",
    d .. "/out.txt", H.bin }, { env = { HOME = d, TERM = "dumb" }, timeout = 40 })
  local out = H.read(d .. "/out.txt")
  lu.assertEquals(r.code, 0, out .. r.stderr)
  lu.assertStrContains(out, "nil\t42") -- x was never set, and the session went on
  lu.assertEquals(select(2, out:gsub("%^C", "")), 2)
end
