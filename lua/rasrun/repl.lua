-- Support for `rasrun repl`: the globals it sets up and how values are shown.
local M = {}

local TOUR = [[
rasrun repl: Lua 5.4 with rasrun loaded. A few things to try:

  prj = rasrun.project.open("path/to/Model.prj")
  prj:plans()                                  -- plans, with titles and files
  prj:plan("01"):result_state()                -- none / stale / current
  rasrun.checks.standard{}(prj:plan("01"):result_path())   -- the check report
  f = rasrun.hdf.open("Model.p01.hdf")
  f:members("/Results/Unsteady")               -- browse groups
  f:attrs("/Results/Unsteady/Summary")         -- attributes as a table
  rasrun.sample.write("/tmp/sample")           -- a small project to play with

Modules: rasrun.project, rasrun.checks, rasrun.results, rasrun.hdf, rasrun.fs,
rasrun.sys, rasrun.json, rasrun.path. Values of expressions are shown; tables
are shown two levels deep. Ctrl-C drops the statement being typed or stops
the one running; Ctrl-D leaves.
]]

-- A statement's error: its message, and the frames of the traceback that
-- are the user's (not rasrun's own modules), as `rasrun run` shows them.
function M.on_error(e)
  return require("rasrun.cli").error_text(e, debug.traceback("", 2))
end

function M.setup()
  _G.rasrun = require "rasrun"
  _G.help = function() io.write(TOUR) end
end

local function key_repr(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
  return "[" .. (type(k) == "string" and ("%q"):format(k) or tostring(k)) .. "]"
end

local function repr(v, depth, indent, seen)
  if type(v) == "string" then return ("%q"):format(v):gsub("\\\n", "\\n") end
  if type(v) ~= "table" or getmetatable(v) and getmetatable(v).__tostring then
    return tostring(v)
  end
  if seen[v] then return "<cycle>" end
  if depth <= 0 then return tostring(v) end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  if #keys == 0 then seen[v] = nil return "{}" end
  local parts, n = {}, #v
  local limit = 60
  for i, k in ipairs(keys) do
    if i > limit then
      parts[#parts + 1] = ("... (%d more)"):format(#keys - limit)
      break
    end
    local val = repr(v[k], depth - 1, indent .. "  ", seen)
    if math.type(k) == "integer" and k >= 1 and k <= n then parts[#parts + 1] = val
    else parts[#parts + 1] = key_repr(k) .. " = " .. val end
  end
  seen[v] = nil
  local flat = "{ " .. table.concat(parts, ", ") .. " }"
  if #flat <= 78 then return flat end
  return "{\n" .. indent .. "  " .. table.concat(parts, ",\n" .. indent .. "  ") .. "\n" .. indent .. "}"
end

function M.repr(v, depth) return repr(v, depth or 2, "", {}) end

function M.show(...)
  local n = select("#", ...)
  local out = {}
  for i = 1, n do out[i] = M.repr((select(i, ...))) end
  print(table.concat(out, "\t"))
end

return M
