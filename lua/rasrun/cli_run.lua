-- Commands about runs: resume an interrupted run, probe a recipe's workers.
local fs = require "rasrun.fs"
local path = require "rasrun.path"
local sys = require "rasrun.sys"
local cli = require "rasrun.cli"
local runtime = require "rasrun.runtime"

local M = {}

cli.help.resume = [[
usage: rasrun resume RUN_FOLDER

Finishes a run that did not end: its controller was killed (SIGKILL, a
crash, a reboot), or Ctrl-C (or the recipe's rasrun.fail) cancelled the
plans still running. Reads RUN_FOLDER/journal.jsonl, stops the engines the dead
controller left running (on this machine and on SSH hosts), removes their
work folders, then runs the same recipe with the same arguments from the
same folder. Plans that finished are kept, not rerun: ok ones unless their
result is gone or damaged or a source of theirs changed since, failed ones
as they failed. The rest run again, and the journal and reports of
RUN_FOLDER are brought up to date.

A run still going (its controller alive) is not resumed. When the run's
projects are not where they were, or no pool:run of the recipe runs them,
nothing is resumed; the engines the run left on this machine are stopped.

RUN_FOLDER is the run's folder, shown at the end of every run
(<project>/.rasrun/runs/<run id>). From Lua: pool:run{..., resume = RUN_FOLDER}.
]]

function M.cmd_resume(args)
  if #args ~= 1 or args[1] == "--help" or args[1] == "-h" then
    ;(#args == 1 and io.stdout or io.stderr):write(cli.help.resume)
    return #args == 1 and 0 or 2
  end
  local dir = path.abspath(args[1])
  local jpath = path.join(dir, "journal.jsonl")
  if not fs.isfile(jpath) then
    io.stderr:write(("rasrun: %s: %s\n"):format(args[1], not fs.exists(dir) and "no such folder"
      or fs.isdir(dir) and "not a run folder (no journal.jsonl)" or "not a run folder (a file)"))
    return 2
  end
  local entries, why = require("rasrun.journal").read(jpath)
  if not entries then
    io.stderr:write(("rasrun: cannot resume %s: %s\n"):format(args[1], why))
    return 2
  end
  local start -- the last run's: a run folder can be used again
  for _, e in ipairs(entries) do
    if e.ev == "run_start" then start = e end
  end
  if not start then
    io.stderr:write(("rasrun: %s: the journal has no run_start line\n"):format(jpath))
    return 2
  end
  if not start.recipe then
    io.stderr:write(("rasrun: %s was not started by `rasrun run`; resume it from Lua with "
      .. "pool:run{..., resume = %q}\n"):format(dir, dir))
    return 2
  end
  local function say(msg) io.stderr:write("rasrun: ", msg, "\n") end
  -- a run still going (its controller holds the journal's lock) is left alone
  local j, jerr = require("rasrun.journal").open(jpath)
  if not j then
    say(("cannot resume %s: %s"):format(dir, jerr))
    return 2
  end
  j:close()
  if start.cwd then
    local ok, err = sys.chdir(start.cwd)
    if not ok then
      say(("cannot resume %s: the folder it was started from is not there any more (%s)"):format(dir, err))
      require("rasrun.pool").stop_left(dir, say)
      return 2
    end
  end
  -- the run's projects must be where they were: else nothing can take it
  for _, prj in ipairs(start.projects or {}) do
    if not fs.isfile(prj) then
      say(("cannot resume %s: its project %s is not there any more (moved?)"):format(dir, prj))
      require("rasrun.pool").stop_left(dir, say)
      return 2
    end
  end
  if not (start.recipe and fs.isfile(start.recipe)) then
    say(("cannot resume %s: its recipe %s is not there any more (moved?)"):format(dir, tostring(start.recipe)))
    require("rasrun.pool").stop_left(dir, say)
    return 2
  end
  -- the recipe's pool:run whose projects are the run's takes it (pool.lua)
  runtime.resume = { dir = dir, projects = start.projects or {}, plans = start.plans, ordinal = start.ordinal }
  io.stderr:write(("rasrun: resuming run %s (recipe %s)\n"):format(path.basename(dir), start.recipe))
  -- the engines the dead controller left here stop first: whichever
  -- pool:run takes the run (or none), they must not run beside new ones
  runtime.resume.stopped = require("rasrun.pool").stop_left(dir, say)
  local code = cli.run_recipe(start.recipe, start.args or {})
  if not runtime.resume.taken then
    if code == 2 then -- an error in the recipe, said above
      say(("the recipe %s stopped before a pool:run took the run: nothing in %s was resumed")
        :format(start.recipe, dir))
    else
      say(("no pool:run of %s runs the projects and plans of %s (%s): nothing in it was resumed")
        :format(start.recipe, dir, table.concat(runtime.resume.projects, ", ")))
    end
    if code == 0 then code = 1 end
  end
  return code
end

cli.help.workers = [[
usage: rasrun workers RECIPE [ARGS...]

Probes the workers a recipe defines instead of running its plans: for each
worker, can rasrun connect and authenticate, is the engine where the worker
says, how many cores the host has, and how much disk is free in its work
folder. The recipe runs up to its first pool:run, which probes that pool and
stops. Exit status 0 when every worker is usable, 1 otherwise; 2 for a
wrong command line, or a recipe that raises an error or ends before any
pool:run without a status of its own (one that returns a status, or calls
rasrun.fail, exits with that status).
]]

function M.cmd_workers(args)
  if #args == 0 or args[1] == "--help" or args[1] == "-h" then
    ;(#args == 0 and io.stderr or io.stdout):write(cli.help.workers)
    return #args == 0 and 2 or 0
  end
  local recipe, err = cli.find_recipe(args[1])
  if not recipe then
    io.stderr:write("rasrun: ", err, "\n")
    return 2
  end
  runtime.probe_only = true
  local code = cli.run_recipe(recipe, { table.unpack(args, 2) })
  -- a recipe that stopped with a status of its own (a usage error) said
  -- why, and one asked for its --help gave it; one that ended without a
  -- pool otherwise had none to probe
  local help = false
  for i = 2, #args do help = help or args[i] == "--help" or args[i] == "-h" end
  if not runtime.probed and code == 0 and not help then
    io.stderr:write(("rasrun: %s ended without reaching a pool:run: no workers to probe\n"):format(recipe))
    return 2
  end
  return code
end

return M
