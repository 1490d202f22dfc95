-- Path helpers (POSIX paths; HEC-RAS's own Windows paths are handled where read).
local M = {}

-- out joined with p: an empty or missing part (nil, false, "") is skipped,
-- an absolute one starts over.
local function join2(out, p)
  if not p or p == "" then return out end
  if not out or p:byte(1) == 47 then return p end -- "/"
  if out:byte(-1) == 47 then return out .. p end
  return out .. "/" .. p
end

-- (called for every file of every plan: no table for its arguments)
function M.join(a, b, ...)
  local out = join2(join2(nil, a), b)
  for i = 1, select("#", ...) do out = join2(out, (select(i, ...))) end
  return out or ""
end

function M.dirname(p)
  local d = p:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  if d == "" then return "/" end
  return d
end

function M.basename(p)
  return p:match("([^/]*)/*$")
end

function M.expanduser(p)
  if p and p:sub(1, 1) == "~" then
    local home = os.getenv("HOME") or ""
    return home .. p:sub(2)
  end
  return p
end

-- The working folder: $PWD when it names it (it keeps the symlinked path a
-- shell shows), else the real one. A parent that changes folder for its
-- child without setting PWD (Python's subprocess with cwd=, for one) leaves
-- a PWD that names another folder. Cached until PWD changes (sys.chdir sets it).
local seen_pwd, seen_cwd
function M.cwd()
  local pwd = os.getenv("PWD")
  if seen_cwd and pwd == seen_pwd then return seen_cwd end
  local fs = require "rasrun.fs"
  local real = fs.realpath(".")
  seen_pwd = pwd
  seen_cwd = (pwd and pwd:sub(1, 1) == "/" and fs.realpath(pwd) == real) and pwd or real or pwd or "/"
  return seen_cwd
end
local cwd = M.cwd

-- Absolute, normalised path; the file need not exist.
function M.abspath(p)
  p = M.expanduser(p)
  if p:sub(1, 1) ~= "/" then p = M.join(cwd(), p) end
  local out = {}
  for part in p:gmatch("[^/]+") do
    if part == ".." then table.remove(out)
    elseif part ~= "." then out[#out + 1] = part end
  end
  return "/" .. table.concat(out, "/")
end

-- Path of p relative to base when p lies under base, else p unchanged.
function M.relative(p, base)
  base = base:gsub("/+$", "")
  if p:sub(1, #base + 1) == base .. "/" then return p:sub(#base + 2) end
  return p
end

-- Shell-quotes one word for POSIX sh.
function M.shell_quote(s)
  if s:match("^[%w%./_%-=:,+@]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

return M
