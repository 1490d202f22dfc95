-- The rasrun command line. main(args) returns the exit status:
-- 0 all good, 1 a check or a run failed, 2 usage or I/O error.
local fs = require "rasrun.fs"
local path = require "rasrun.path"

local M = {}

local USAGE = [[
usage: rasrun COMMAND [ARGS...]

Run HEC-RAS plans on pools of workers, driven by Lua recipes.

Commands:
  run RECIPE [ARGS...]     run a recipe (a Lua file, or a name found on the recipe path)
  resume RUN_FOLDER        rerun what an interrupted run did not finish
  check FILE.hdf...        the standard checks on HEC-RAS result files
  plans PROJECT.prj        the plans of a project and the state of their results
  workers RECIPE           probe the workers a recipe defines (connect, engine, cores, disk)
  repl                     interactive Lua with the rasrun modules loaded

Options:
  --help, -h               this text; `rasrun COMMAND --help` for one command
  --version                the version

Recipes are found as given (with or without .lua), then on RASRUN_PATH (folders separated by ':'),
./recipes, ~/.local/share/rasrun/recipes and the installed recipes.
Try:  rasrun run sample        (a sample project on a local pool, simulated engine)
Exit status: 0 all good, 1 a check or a run failed, 2 usage or I/O error;
130, 143, 129 or 131 when a run was stopped by Ctrl-C, SIGTERM, a hangup or
Ctrl-\.
]]

M.help = {}

local function err(fmt, ...)
  io.stderr:write("rasrun: ", fmt:format(...), "\n")
end

local function wants_help(args)
  for _, a in ipairs(args) do
    if a == "--" then return false end -- what follows are names, "--help" among them
    if a == "--help" or a == "-h" then return true end
  end
  return false
end

-- Splits args into options (by the spec, anywhere before "--") and
-- positionals. spec maps an option name to "flag" or "value".
-- Returns opts, positionals or nil, message.
function M.parse(args, spec)
  local opts, pos = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      table.move(args, i + 1, #args, #pos + 1, pos)
      break
    elseif a:sub(1, 2) == "--" then
      local name, val = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local kind = spec[name]
      if not kind then return nil, ("unknown option --%s"):format(name) end
      if kind == "flag" then
        if val then return nil, ("option --%s takes no value"):format(name) end
        opts[name] = true
      else
        if not val then
          i = i + 1
          val = args[i]
          if not val then return nil, ("option --%s needs a value"):format(name) end
        end
        opts[name] = val
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

-- ---- recipes -------------------------------------------------------------

function M.recipe_dirs()
  local dirs = {}
  for d in (os.getenv("RASRUN_PATH") or ""):gmatch("[^:]+") do dirs[#dirs + 1] = d end
  dirs[#dirs + 1] = "recipes"
  dirs[#dirs + 1] = path.expanduser("~/.local/share/rasrun/recipes")
  if _RASRUN_SHARE then dirs[#dirs + 1] = path.join(_RASRUN_SHARE, "recipes") end
  return dirs
end

-- A recipe is a path to a Lua file, or a name looked up on the recipe path.
function M.find_recipe(name)
  if fs.isfile(name) then return name end
  if fs.isfile(name .. ".lua") then return name .. ".lua" end
  local tried = {}
  for _, d in ipairs(M.recipe_dirs()) do
    for _, cand in ipairs({ path.join(d, name), path.join(d, name .. ".lua") }) do
      if fs.isfile(cand) then return cand end
    end
    tried[#tried + 1] = d
  end
  return nil, ("no recipe %q (looked in the current folder and %s)"):format(name,
    table.concat(tried, ", "))
end

-- Recipes may require site modules kept beside them.
local function add_recipe_paths(recipe)
  local extra = { path.join(path.dirname(recipe), "?.lua") }
  for _, d in ipairs(M.recipe_dirs()) do extra[#extra + 1] = path.join(d, "?.lua") end
  package.path = table.concat(extra, ";") .. ";" .. package.path
end

-- rasrun's own modules: the folder this file was loaded from.
local MODULES = debug.getinfo(1, "S").source:match("^@(.*/)") or "\0"

-- Is a traceback frame's source one of rasrun's modules? A long path shows
-- as "...<its end>".
local function ours(src)
  local name = src:match("([^/]+%.lua)$")
  if not name then return false end
  local full = MODULES .. name
  if src:sub(1, 3) == "..." then return #src > 3 and full:sub(-(#src - 3)) == src:sub(4) end
  return full == src
end

-- An error's message (as the standalone lua says one that is not a string),
-- and the frames of the traceback that are the recipe's: rasrun's own
-- modules and C functions are left out, and a traceback with no more than
-- the line the message names already is left out altogether.
local function recipe_error(e, traceback)
  local msg
  if type(e) == "string" or type(e) == "number" then msg = tostring(e)
  elseif getmetatable(e) and getmetatable(e).__tostring then msg = tostring(e)
  else msg = ("(error object is a %s value)"):format(type(e)) end
  local frames = {}
  for line in traceback:gmatch("\n\t([^\n]+)") do
    -- (a Lua frame names its file first: "FILE:LINE: in ...")
    local src = line:match("^(.-):%d+:") or ""
    if not (line:find("^%[C%]") or line:find("^%(%.%.%.tail calls") or ours(src)) then
      frames[#frames + 1] = line
    end
  end
  if #frames <= 1 then return msg end
  return msg .. "\nstack traceback:\n\t" .. table.concat(frames, "\n\t")
end
M.error_text = recipe_error -- the REPL's errors are shown the same way

-- Runs a recipe with arg set as the standalone lua does. Returns the status.
function M.run_recipe(recipe, rargs)
  local chunk, lerr = loadfile(recipe, "t") -- text: a recipe is never a compiled chunk
  if not chunk then
    -- (a syntax error names the file and line already)
    if lerr:find("binary chunk", 1, true) then
      lerr = recipe .. ": a compiled Lua chunk: a recipe is Lua source text"
    end
    io.stderr:write(lerr, "\n")
    return 2
  end
  add_recipe_paths(recipe)
  local a = { [0] = recipe }
  for i, v in ipairs(rargs) do a[i] = v end
  _G.arg = a
  local runtime = require "rasrun.runtime"
  runtime.recipe = { path = path.abspath(recipe), args = rargs }
  local ok, ret = xpcall(chunk, function(e)
    if type(e) == "table" and e.exit_code then return e end
    return recipe_error(e, debug.traceback("", 2))
  end, table.unpack(rargs))
  if not ok then
    if type(ret) == "table" and ret.exit_code then
      if ret.message and not ret.said then io.stderr:write(ret.message, "\n") end
      return ret.exit_code
    end
    io.stderr:write(tostring(ret), "\n")
    return 2
  end
  -- a recipe that caught the stop of an interrupted run ends as that run did
  if runtime.interrupted then return 128 + runtime.interrupted end
  if math.type(ret) == "integer" then return ret end
  if type(ret) == "number" then -- main says what is wrong with it
    return ret
  end
  if ret == false then return 1 end
  return runtime.status()
end

M.help.run = [[
usage: rasrun run RECIPE [ARGS...]

Runs a recipe: a Lua file that builds a pool of workers and runs plans on it.
ARGS reach the recipe as `arg` (arg[0] is the recipe) and as `...`.
RECIPE is a path, or a name looked up (with or without .lua) on RASRUN_PATH,
./recipes, ~/.local/share/rasrun/recipes and the installed recipes; modules
beside a recipe can be loaded with require.

Exit status: what the recipe returns (a number), else 1 if any plan failed or
was cancelled, else 0; 2 for a Lua error (printed with file:line and a traceback);
130, 143, 129 or 131 when Ctrl-C, SIGTERM, a hangup or Ctrl-\ (SIGQUIT)
stopped a run (its engines stopped, its journal and reports written).

Example:  rasrun run sample --plans 01,03
]]

function M.cmd_run(args)
  if #args == 0 then
    err("run: which recipe? (rasrun run --help)")
    return 2
  end
  if args[1] == "--help" or args[1] == "-h" then
    io.write(M.help.run)
    return 0
  end
  local recipe, ferr = M.find_recipe(args[1])
  if not recipe then
    err("%s", ferr)
    return 2
  end
  return M.run_recipe(recipe, { table.unpack(args, 2) })
end

-- ---- check ----------------------------------------------------------------

M.help.check = [[
usage: rasrun check [--max-volume-error PCT] [--since TIME] [--json] FILE.hdf...

Runs the standard checks on HEC-RAS result files (6.x and 5.0.7 layouts,
unsteady and steady):
  file       the file exists, is HDF5 and holds results (with --since: was
             written after TIME, by mtime and by its Run Time Window)
  solution   Solution says the run finished successfully
  volume     |volume accounting error| below PCT percent (default 1.0)
  messages   no error lines in the compute messages
Prints `PASS <file>` or `FAIL <file>: <reason>` per file; --json prints an array
of {file, ok, checks = [{name, ok, detail, skipped}]} (skipped: a check that did
not apply, with ok true).
TIME is epoch seconds or "YYYY-MM-DD HH:MM[:SS]" (local time).

Exit status: 0 all passed, 1 some file failed, 2 usage error or a file that is
missing, unreadable or not a file.
]]

local function parse_time(s)
  local n = tonumber(s)
  if n then return math.abs(n) <= 253402300799 and n or nil end -- up to the year 9999
  local y, mo, d, h, mi, sec = s:match("^(%d%d%d%d)-(%d%d?)-(%d%d?)[ T](%d%d?):(%d%d)(.*)$")
  if not y or not (sec == "" or sec:match("^:%d%d$")) then return nil end
  local want = { year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h),
                 min = tonumber(mi), sec = tonumber(sec:sub(2)) or 0 }
  -- os.time carries what is out of range over (month 13, 25:00), in the
  -- table it is given too: such a time is refused
  local t = os.time({ year = want.year, month = want.month, day = want.day, hour = want.hour,
                      min = want.min, sec = want.sec })
  local got = t and os.date("*t", t)
  for _, k in ipairs({ "year", "month", "day", "hour", "min", "sec" }) do
    if not got or got[k] ~= want[k] then return nil end
  end
  return t
end

function M.cmd_check(args)
  if wants_help(args) then
    io.write(M.help.check)
    return 0
  end
  local opts, files = M.parse(args, { ["max-volume-error"] = "value", json = "flag",
                                      since = "value" })
  if not opts then
    err("check: %s (rasrun check --help)", files)
    return 2
  end
  if #files == 0 then
    err("check: no files given (rasrun check --help)")
    return 2
  end
  local limit = tonumber(opts["max-volume-error"] or "1.0")
  if not limit or limit <= 0 or limit == math.huge or limit ~= limit then
    err("check: --max-volume-error needs a positive number of percent, got %q", opts["max-volume-error"])
    return 2
  end
  local ctx = {}
  if opts.since then
    ctx.since = parse_time(opts.since)
    if not ctx.since then
      err("check: --since needs epoch seconds or \"YYYY-MM-DD HH:MM:SS\", got %q", opts.since)
      return 2
    end
    ctx.utc_offset = require("rasrun.sys").tz_offset(ctx.since)
    ctx.since_text, ctx.since_mark = "written after " .. opts.since, "--since"
  end
  local set = require("rasrun.checks").standard { max_volume_error = limit }
  local status, reports = 0, {}
  for _, f in ipairs(files) do
    local rep = set(f, ctx)
    rep.result = nil
    reports[#reports + 1] = rep
    -- a file that cannot be read is not a result that failed its checks
    local fh = fs.isfile(f) and io.open(f, "rb")
    if fh then fh:close() end
    if not fh then status = 2
    elseif not rep.ok and status == 0 then status = 1 end
    if not opts.json then
      if rep.ok then print("PASS " .. f) else print(("FAIL %s: %s"):format(f, rep.reason)) end
    end
  end
  if opts.json then
    local json = require "rasrun.json"
    for _, r in ipairs(reports) do r.reason = nil; json.array(r.checks) end
    print(json.encode(json.array(reports), true))
  end
  return status
end

-- ---- plans ----------------------------------------------------------------

M.help.plans = [[
usage: rasrun plans [--json] PROJECT.prj

Lists the plans of a HEC-RAS project: number, title, short id, geometry, flow
file, and the state of the result: no result / result out of date (an input
is newer, it is dated in the future, or it was made for another plan: the
reason follows) / result fails its checks / up to date (newer than its
inputs and passing the standard checks, as `rasrun run` would skip it). Plans whose file, or whose
geometry or flow file, is missing are shown as missing.

  --json    the same as one JSON document: { project, title, plans = [ {
            number, id, title, short_id, geometry, flow, flow_kind, state
            (none, stale, failed, current, missing), detail, result } ] }

Exit status 0 when the project could be read (whatever its plans' state),
2 when it could not.
]]

local STATE_TEXT = { none = "no result", stale = "result out of date",
                     failed = "result fails its checks", current = "up to date", missing = "missing" }

local function plan_row(p, checks)
  local state, why = p:result_state()
  if state == "current" then
    -- newer than its inputs; up to date only if it also passes the checks
    local rep = checks(p:result_path())
    if not rep.ok then state, why = "failed", rep.reason end
  end
  return { number = p.number, id = p.id, title = p.title, short_id = p.short_id,
           geometry = p.geometry and p.geometry.id, flow = p.flow and p.flow.id,
           flow_kind = p.flow_kind, state = state, detail = why,
           result = (state == "current" or state == "stale" or state == "failed") and p:result_path() or nil,
           missing = p.missing or nil, error = p.error }
end

-- Text as UTF-8 (Windows HEC-RAS writes titles in Windows-1252).
local function text(s) return require("rasrun.json").utf8(tostring(s)) end

-- A column n characters wide: cut (with "~") or padded, by characters.
local function cell(s, n)
  s = text(s or "-")
  local len = utf8.len(s) or #s
  if len > n then return s:sub(1, (utf8.offset(s, n) or n) - 1) .. "~" end
  return s .. (" "):rep(n - len)
end

function M.cmd_plans(args)
  if wants_help(args) then
    io.write(M.help.plans)
    return 0
  end
  local opts, pos = M.parse(args, { json = "flag" })
  if not opts then
    err("plans: %s (rasrun plans --help)", pos)
    return 2
  end
  if #pos ~= 1 then
    err("plans: give one PROJECT.prj (rasrun plans --help)")
    return 2
  end
  local prj, perr = require("rasrun.project").open(pos[1])
  if not prj then
    err("%s", perr)
    return 2
  end
  local rows = {}
  local checks = require("rasrun.checks").standard {}
  for _, p in ipairs(prj:plans()) do rows[#rows + 1] = plan_row(p, checks) end
  if opts.json then
    local json = require "rasrun.json"
    print(json.encode({ project = prj.path, title = prj.title, plans = json.array(rows) }, true))
    return 0
  end
  print(("Project %s: %s"):format(text(path.basename(prj.path)), prj.title and text(prj.title) or "(no title)"))
  local fmt = "%-5s %s %s %-5s %-5s %s"
  print(fmt:format("PLAN", cell("TITLE", 36), cell("SHORT ID", 20), "GEOM", "FLOW", "RESULT"))
  for _, r in ipairs(rows) do
    local state = STATE_TEXT[r.state] or r.state
    if r.state == "missing" then state = "missing: " .. (r.detail or r.error or "") end
    if r.state == "stale" or r.state == "failed" then state = state .. " (" .. r.detail .. ")" end
    print(fmt:format(r.number, cell(r.title, 36), cell(r.short_id, 20), r.geometry or "-",
      r.flow or "-", text(state)))
  end
  if #rows == 0 then print("(the project lists no plans)") end
  return 0
end

-- ---- dispatch ---------------------------------------------------------------

M.help.repl = [[
usage: rasrun repl

Interactive Lua 5.4 with the rasrun modules loaded as `rasrun`. Expressions
show their value; an incomplete statement continues on the next line (>>).
Line editing and history (~/.rasrun_history) on a terminal; piped input is
read as statements without prompts (exit status 1 if any raised an error).
Ctrl-C drops the statement being typed, or stops the one running; Ctrl-D
leaves. Type help() inside for a tour.
]]

local COMMANDS = {
  run = M.cmd_run, check = M.cmd_check, plans = M.cmd_plans,
  repl = function() io.write(M.help.repl) return 0 end,
}

-- Commands whose code lives in their own module.
local LAZY = { resume = "rasrun.cli_run", workers = "rasrun.cli_run" }

function M.main(args)
  local cmd = args[1]
  if not cmd or cmd == "--help" or cmd == "-h" or cmd == "help" then
    if cmd == "help" and args[2] and (COMMANDS[args[2]] or LAZY[args[2]] or args[2] == "repl") then
      return M.main({ args[2], "--help" })
    elseif cmd == "help" and args[2] then
      err("no command %q (rasrun --help lists them)", args[2])
      return 2
    end
    -- asked for, the help is the output; as a usage error, it goes to stderr
    ;(cmd and io.stdout or io.stderr):write(USAGE)
    return cmd and 0 or 2
  end
  local rest = { table.unpack(args, 2) }
  local f = COMMANDS[cmd]
  if not f and LAZY[cmd] then f = require(LAZY[cmd])["cmd_" .. cmd] end
  if not f then
    err("unknown command %q (rasrun --help lists them)", cmd)
    return 2
  end
  return f(rest)
end

return M
