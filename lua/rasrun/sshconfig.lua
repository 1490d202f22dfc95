-- OpenSSH client configuration (~/.ssh/config), for what rasrun uses:
-- HostName, User, Port, IdentityFile. As ssh does, the first value found for
-- an option wins; Host patterns take * and ? and !negation; Include is
-- followed. Match blocks are not evaluated (their options are skipped).
local fs = require "rasrun.fs"
local path = require "rasrun.path"

local M = {}

local function glob_to_lua(p)
  return "^" .. p:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
end

local function host_matches(patterns, host)
  local any = false
  for _, p in ipairs(patterns) do
    local neg = p:sub(1, 1) == "!"
    local pat = glob_to_lua(neg and p:sub(2) or p)
    if host:lower():match(pat:lower()) then
      if neg then return false end
      any = true
    end
  end
  return any
end

-- The words of a line, each quoted one as its text ("a b" c -> a b, c).
local function words(s)
  local out, i = {}, 1
  while true do
    local a = s:find("%S", i)
    if not a then return out end
    local b
    if s:sub(a, a) == '"' then
      b = s:find('"', a + 1, true) or #s + 1
      out[#out + 1], i = s:sub(a + 1, b - 1), b + 1
    else
      b = s:find("%s", a) or #s + 1
      out[#out + 1], i = s:sub(a, b - 1), b
    end
  end
end

-- Options in file order, with the Host pattern lists they are under, every
-- one of which must match: { {conds, key, value}, ... }. An Include inside a
-- Host block applies only where that block does (outer: its conditions).
local function read(file, out, depth, outer)
  if depth > 8 then return out end
  local text = fs.read(path.expanduser(file))
  if not text then return out end
  local function under(patterns)
    local conds = { table.unpack(outer) }
    conds[#conds + 1] = patterns
    return conds
  end
  local conds = under({ "*" })
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("#.*$", ""):gsub("^%s+", ""):gsub("%s+$", "")
    -- "Key value", "Key=value" and "Key = value" are all ssh_config syntax
    local key, rest = line:match("^([^%s=]+)%s*=?%s*(.*)$")
    if key then
      local k = key:lower()
      if k == "host" then conds = under(words(rest))
      elseif k == "match" then conds = under({}) -- not evaluated: nothing below applies
      elseif k == "include" then
        for _, inc in ipairs(words(rest)) do
          inc = path.expanduser(inc)
          if inc:sub(1, 1) ~= "/" then inc = path.expanduser("~/.ssh/" .. inc) end
          for _, f in ipairs(fs.glob(inc)) do read(f, out, depth + 1, conds) end
        end
      else
        out[#out + 1] = { conds, k, rest:match('^"(.*)"$') or rest } -- a quoted value: its text
      end
    end
  end
  return out
end

-- Expands ssh's tokens in a file name.
local function expand(s, host, user)
  s = s:gsub("%%d", os.getenv("HOME") or ""):gsub("%%u", os.getenv("USER") or "")
       :gsub("%%h", host):gsub("%%r", user or ""):gsub("%%%%", "%%")
  return path.expanduser(s)
end

-- Settings for host: { hostname=, user=, port=, identity_files = {...} } (absent
-- fields were not configured).
function M.resolve(host, file)
  local r = { identity_files = {} }
  for _, o in ipairs(read(file or "~/.ssh/config", {}, 0, {})) do
    local conds, k, v = o[1], o[2], o[3]
    local applies = true
    for _, patterns in ipairs(conds) do applies = applies and host_matches(patterns, host) end
    if applies then
      if k == "hostname" and not r.hostname then r.hostname = v:gsub("%%h", host)
      elseif k == "user" and not r.user then r.user = v
      elseif k == "port" and not r.port then r.port = tonumber(v)
      elseif k == "identityfile" then r.identity_files[#r.identity_files + 1] = v end
    end
  end
  for i, f in ipairs(r.identity_files) do r.identity_files[i] = expand(f, host, r.user) end
  return r
end

return M
