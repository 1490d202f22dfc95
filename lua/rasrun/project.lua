-- HEC-RAS projects: the .prj, its plans, geometries and flows.
--
--   local prj, err = project.open("models/Muncie/Muncie.prj")
--   prj.name, prj.dir, prj.title, prj.units, prj.current_plan
--   for _, plan in ipairs(prj:plans()) do ... end      -- in plan-number order
--   local p = prj:plan("04")     -- also "p04", 4
--   p.title, p.short_id, p.geometry, p.flow, p.flow_kind, p.cores, p.missing
--   p:inputs("windows" | "linux")  -> files a run needs (names in prj.dir), missing
--   p:outputs("windows" | "linux") -> files a run produces (glob patterns)
--   p:result_path(), p:result_state() -> "none" | "stale" | "current", reason
--
-- Project files are text, usually CRLF, sometimes with upper-case extensions
-- (EX1.P01); both are accepted.
local fs = require "rasrun.fs"
local path = require "rasrun.path"
local hecdate = require "rasrun.hecdate"
local json = require "rasrun.json"
local textkeys = require "rasrun.keys"

local M = {}

local Project, Plan = {}, {}
Project.__index, Plan.__index = Project, Plan

-- Reads "Key=Value" lines: returns an ordered list and a first-value map.
-- Lines without "=" (flags such as "English Units") map to true. Values
-- lose the blanks around them ("Plan File= p03").
-- Only the first limit bytes are read (default 8 MiB: a project or plan file
-- is far smaller; a big binary file given for one is not read whole).
-- first_only: the list stays empty (a plan file needs only the map; plans
-- are read by the thousand).
local function read_keys(file, limit, first_only)
  local data, err = fs.read(file, limit or 8 * 1024 * 1024)
  if not data then return nil, err end
  if data:find("\0", 1, true) then return nil, file .. ": binary data, not a HEC-RAS text file" end
  if data:sub(1, 3) == "\239\187\191" then data = data:sub(4) end -- a UTF-8 byte order mark
  -- (in C: plans are read by the thousand)
  return textkeys.parse(data, first_only)
end

-- Finds "<stem>.<ext>" in the folder whatever the case of the extension.
-- (asked for every file of every plan: each answer is kept, until the
-- index changes)
function Project:file(ext)
  local known = self._files[ext]
  if known == nil then
    local want = (self.name .. "." .. ext):lower()
    known = self._index[want] and path.join(self.dir, self._index[want]) or false
    self._files[ext] = known
  end
  return known or nil
end

-- The on-disk spelling of a path relative to dir ("Hydrology/Inflow.DSS"
-- -> "hydrology/inflow.dss"): each part as found, the same case first,
-- else any case (Windows HEC-RAS does not mind it). A name the project's
-- files spell in Windows-1252 ("Hidrolog\237a") is found under its UTF-8
-- spelling too, as a copy from Windows names it. nil when absent.
local function on_disk(dir, rel)
  local parts = {}
  for part in rel:gmatch("[^/]+") do
    local names = fs.list(dir)
    local alt = part:find("[\128-\255]") and json.utf8(part) or part
    local hit
    for _, n in ipairs(names or {}) do
      if n == part or n == alt then hit = n break end
      if not hit and (n:lower() == part:lower() or n:lower() == alt:lower()) then hit = n end
    end
    if not hit then return nil end
    parts[#parts + 1] = hit
    dir = path.join(dir, hit)
  end
  return #parts > 0 and table.concat(parts, "/") or nil
end

-- The on-disk name of a file the project's files name (a restart or DSS
-- file, maybe in a subfolder), whatever its case; one made since the
-- project was opened (a restart file an earlier plan wrote) is found too.
-- nil when absent.
function Project:find(name)
  if not name then return nil end
  local actual = self._index[name:lower()]
  if not actual then
    actual = on_disk(self.dir, name)
    if not (actual and fs.isfile(path.join(self.dir, actual))) then return nil end
    self._index[name:lower()] = actual
    self._files = {}
  end
  return actual
end

-- The on-disk name (case as found) or the canonical lower-case name.
function Project:name_of(ext)
  local want = (self.name .. "." .. ext):lower()
  return self._index[want] or (self.name .. "." .. ext)
end

-- A plan id in any form ("p04", "04", 4) -> "04"; nil when it is none.
local function num2(v)
  v = tostring(v):lower():gsub("^p", "")
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then return nil end
  return ("%02d"):format(n)
end
M.plan_number = num2

local function index_dir(dir)
  local names, err = fs.list(dir)
  if not names then return nil, err end
  local idx = {}
  for _, n in ipairs(names) do
    local low = n:lower()
    if not idx[low] then idx[low] = n end
  end
  return idx
end

function M.open(prj_path)
  if type(prj_path) ~= "string" then error("project.open: expected a .prj path", 2) end
  local abs = path.abspath(prj_path)
  if not fs.isfile(abs) then
    return nil, prj_path .. (fs.exists(abs) and ": not a file" or ": no such project file")
  end
  local list, keys = read_keys(abs)
  if not list then return nil, keys end
  local self = setmetatable({ path = abs, dir = path.dirname(abs),
    name = (path.basename(abs):gsub("%.[^.]*$", "")), title = keys["Proj Title"],
    current_plan = keys["Current Plan"],
    units = keys["SI Units"] and "SI" or "English",
    plan_ids = {}, geom_ids = {}, flow_ids = {}, _plans = {}, _geoms = {}, _flows = {} }, Project)
  if not keys["Proj Title"] and not keys["Plan File"] then
    local what = keys["Plan Title"] and " (a plan file?)" or keys["Geom Title"] and " (a geometry file?)"
      or (keys["Flow Title"] or keys["Unsteady Flow Title"]) and " (a flow file?)" or ""
    return nil, prj_path .. ": not a HEC-RAS project file (no Proj Title, no plans)" .. what
  end
  local idx, err = index_dir(self.dir)
  if not idx then return nil, err end
  self._index, self._files = idx, {}
  -- ids as HEC-RAS writes them (p01..p99): a line that only looks like one
  -- (in the project's description, or damaged) names no file
  -- (each once: a line listed twice, "p04" beside "P04", is one plan)
  local seen = {}
  local function take(ids, v)
    if not seen[v] then
      seen[v] = true
      ids[#ids + 1] = v
    end
  end
  for _, kv in ipairs(list) do
    local k, v = kv[1], kv[2]:lower()
    if k == "Plan File" and v:match("^p%d%d$") then take(self.plan_ids, v)
    elseif k == "Geom File" and v:match("^g%d%d$") then take(self.geom_ids, v)
    elseif (k == "Unsteady File" or k == "Flow File" or k == "QuasiSteady File" or k == "Quasi-Steady File")
      and v:match("^[fuq]%d%d$") then
      take(self.flow_ids, v)
    end
  end
  table.sort(self.plan_ids)
  return self
end

-- Geometry and flow descriptors are read on demand, once per project (plans
-- share them).
function Project:geometry(id)
  id = id:lower()
  if self._geoms[id] then return self._geoms[id] end
  local file = self:file(id)
  local g = { id = id, number = id:sub(2), file = file, missing = file == nil,
              hdf = self:file(id .. ".hdf") }
  if file then
    -- the title is the first line; the rest (cross sections, meshes) can
    -- run to hundreds of megabytes
    local _, keys = read_keys(file, 64 * 1024)
    g.title = keys and keys["Geom Title"]
  end
  self._geoms[id] = g
  return g
end

function Project:flow(id)
  id = id:lower()
  if self._flows[id] then return self._flows[id] end
  self._flows[id] = self:_read_flow(id)
  return self._flows[id]
end

-- A DSS file as a flow file names it (".\\hydrology\\inflow.dss", relative to
-- the project folder) -> "hydrology/inflow.dss"; nil for one outside the
-- folder (absolute, or through ".."), which the engine host must have.
local function project_relative(name)
  local rel = name:gsub("\\", "/")
  if rel:match("^%a:") or rel:sub(1, 1) == "/" then return nil end
  local parts = {}
  for part in rel:gmatch("[^/]+") do
    if part == ".." then return nil end
    if part ~= "." then parts[#parts + 1] = part end
  end
  return #parts > 0 and table.concat(parts, "/") or nil
end

-- The DSS files a flow's boundaries read: each "DSS File=" followed by
-- "Use DSS=True" (every named one in files without "Use DSS=" lines).
local function dss_inputs(list, keys)
  local out, seen, outside = {}, {}, {}
  local pending
  local function take(name)
    if not name or name == "" then return end
    local rel = project_relative(name)
    if not rel then
      outside[#outside + 1] = name
    elseif not seen[rel:lower()] then
      seen[rel:lower()] = true
      out[#out + 1] = rel
    end
  end
  local marked = keys["Use DSS"] ~= nil
  for _, kv in ipairs(list) do
    if kv[1] == "DSS File" then
      pending = kv[2]
      if not marked then take(pending) end
    elseif kv[1] == "Use DSS" then
      if kv[2]:lower() == "true" then take(pending) end
      pending = nil
    end
  end
  return out, outside
end

-- The gridded meteorological data a flow names (precipitation, wind, ...):
-- "Met BC=Precipitation|Gridded DSS Filename=.\Precipitation\precip.dss"
-- (or "Gridded GDAL Filename="), project-relative names, in order; and
-- which of them the run reads for sure: gridded precipitation, when
-- "Precipitation Mode=Enable" and "Met BC=Precipitation|Mode=Gridded"
-- (a setting left from a variable not in use may name a file not there).
local function met_inputs(list, keys)
  local out, seen, mode, named = {}, {}, {}, {}
  for _, kv in ipairs(list) do
    if kv[1] == "Met BC" then
      local var, rest = kv[2]:match("^([^|]*)|(.*)$")
      local name = rest and rest:match("^Gridded %a+ Filename=(.+)$")
      local rel = name and project_relative(name)
      if rest and rest:match("^Mode=") then mode[var] = rest:sub(6) end
      if rel and not seen[rel:lower()] then
        seen[rel:lower()] = true
        out[#out + 1] = rel
        named[rel] = var
      end
    end
  end
  local required = {}
  for _, rel in ipairs(out) do
    required[rel] = named[rel] == "Precipitation" and mode.Precipitation == "Gridded"
      and keys["Precipitation Mode"] == "Enable" or nil
  end
  return out, required
end

function Project:_read_flow(id)
  local file = self:file(id)
  local kind = id:sub(1, 1) == "u" and "unsteady" or id:sub(1, 1) == "q" and "quasi-steady" or "steady"
  local f = { id = id, number = id:sub(2), file = file, missing = file == nil, kind = kind, dss = {}, met = {} }
  if file then
    -- whole: inline hydrographs run to megabytes, and a DSS file named
    -- after them is an input all the same
    local list, keys = read_keys(file, math.maxinteger)
    if not list then
      f.error = keys -- names the file: unreadable, or not a text file
    else
      f.title = keys["Flow Title"]
      -- the restart file, where the flow names it: in the project folder
      -- or a subfolder of it (".\\Restart\\x.rst"); one named outside it
      -- (absolute) is looked for in the project folder
      local use = tonumber(keys["Use Restart"] or "0") or 0
      local named = keys["Restart Filename"] or ""
      local restart = project_relative(named) or named:gsub("^.*[\\/]", "")
      if use ~= 0 and restart ~= "" and restart ~= "." and restart ~= ".." then f.restart = restart end
      f.dss, f.dss_outside = dss_inputs(list, keys)
      f.met, f.met_required = met_inputs(list, keys)
    end
  end
  return f
end

-- A plan's simulation window ("01JAN2024,0000,02JAN2024,1200"), or nil.
-- Plans are read by the thousand and share a few windows: each text is
-- parsed once (the last SIM_MEMO of them are kept).
local SIM_MEMO = 256
local sim_memo, sim_count = {}, 0
local function simulation(sim)
  local m = sim_memo[sim]
  if m == nil then
    local a, b, c, d = sim:match("^([^,]*),([^,]*),([^,]*),([^,]*)$")
    m = a and { start = hecdate.parse(a .. " " .. b), stop = hecdate.parse(c .. " " .. d) } or false
    if sim_count >= SIM_MEMO then sim_memo, sim_count = {}, 0 end
    sim_memo[sim], sim_count = m, sim_count + 1
  end
  return m and { text = sim, start = m.start, stop = m.stop } or nil
end

local function parse_plan(self, id)
  local file = self:file(id)
  local p = setmetatable({ project = self, id = id, number = id:sub(2), file = file,
                           missing = file == nil }, Plan)
  if not file then
    p.error = ("%s: plan %s is listed in the project but its file %s.%s is missing")
      :format(path.basename(self.path), id, self.name, id)
    return p
  end
  local list, keys = read_keys(file, nil, true)
  if not list then
    p.missing, p.error = true, keys
    return p
  end
  p.title = keys["Plan Title"]
  p.short_id = keys["Short Identifier"]
  p.program_version = keys["Program Version"]
  p.write_detailed = tonumber(keys["Write Detailed"] or "0") == 1
  p.cores = { d1 = tonumber(keys["UNET D1 Cores"] or ""), d2 = tonumber(keys["UNET D2 Cores"] or ""),
              ps = tonumber(keys["PS Cores"] or "") }
  local g, fl = keys["Geom File"], keys["Flow File"]
  if g == "" then g = nil end
  if fl == "" then fl = nil end
  if not g or not fl then
    p.error = ("%s: no %s line, not a usable HEC-RAS plan file"):format(file,
      g and "Flow File=" or "Geom File=")
    p.broken = true
    return p
  end
  p.geometry, p.flow = self:geometry(g), self:flow(fl)
  p.flow_kind = p.flow.kind
  if p.flow.error then
    p.error, p.broken = ("plan %s: flow file: %s"):format(id, p.flow.error), true
    return p
  end
  local sim = keys["Simulation Date"]
  if sim and sim ~= "" then p.simulation = simulation(sim) end
  -- the DSS file the plan writes: its name, and where it is in the project
  -- (nil for a path outside it)
  local dss = keys["DSS File"]
  if dss and dss ~= "" and dss ~= "dss" then
    p.dss, p.dss_path = dss:gsub("^.*[\\/]", ""), project_relative(dss)
  end
  -- sediment and water quality data (sNN, wNN), when the plan uses them
  local function id_of(key)
    local v = keys[key]
    return type(v) == "string" and v:match("^%a%d%d$") and v:lower() or nil
  end
  p.sediment, p.water_quality = id_of("Sediment File"), id_of("Water Quality File")
  return p
end

function Project:plan(id)
  local n = num2(id)
  if not n or #n > 2 then
    error(("%s: %q is not a plan id (plans are numbered 01 to 99: \"04\", \"p04\" or 4)")
      :format(path.basename(self.path), tostring(id)), 2)
  end
  local pid = "p" .. n
  if not self._plans[pid] then
    local listed = false
    for _, v in ipairs(self.plan_ids) do
      if v == pid then listed = true break end
    end
    if not listed and not self:file(pid) then return nil, ("%s: no plan %s"):format(self.path, pid) end
    self._plans[pid] = parse_plan(self, pid)
  end
  return self._plans[pid]
end

function Project:plans()
  -- the plan files not read yet are asked of the disk all at once: read one
  -- by one from a cold cache, they took twice as long (1000 plans: 66-82 ms
  -- against 132-156)
  local unread = {}
  for _, id in ipairs(self.plan_ids) do
    if not self._plans[id] then unread[#unread + 1] = self:file(id) end
  end
  if #unread > 1 then fs.prefetch(unread) end
  local out = {}
  for _, id in ipairs(self.plan_ids) do out[#out + 1] = self:plan(id) end
  return out
end

function Project:geometries()
  local out = {}
  for _, id in ipairs(self.geom_ids) do out[#out + 1] = self:geometry(id) end
  return out
end

function Project:flows()
  local out = {}
  for _, id in ipairs(self.flow_ids) do out[#out + 1] = self:flow(id) end
  return out
end

function Project:__tostring()
  return ("project %s (%s, %d plans)"):format(self.name, self.path, #self.plan_ids)
end

-- ---- plans -----------------------------------------------------------------

function Plan:__tostring()
  return ("plan %s %q (%s)"):format(self.number, self.title or "?", self.file or "missing")
end

-- Files a run of this plan needs, as names inside the project folder.
-- Returns the list and a list of required files that are missing. The
-- restart file the flow starts from is required; with opts.waits (the plan
-- waits for others, which may write it) it is listed even when it is not
-- there yet, and staging names it if it never comes.
function Plan:inputs(kind, opts)
  local prj = self.project
  local need, missing, seen = {}, {}, {}
  local function add(ext, required)
    local name = prj:file(ext) and prj:name_of(ext)
    if name and not seen[name] then
      seen[name] = true
      need[#need + 1] = name
    elseif not name and required then
      missing[#missing + 1] = prj.name .. "." .. ext
    end
  end
  local function add_name(name)
    local actual = prj:find(name)
    if actual and not seen[actual] then
      seen[actual] = true
      need[#need + 1] = actual
    end
  end
  if self.missing or self.broken then return need, { self.error } end
  local g, fl = self.geometry.id, self.flow.id
  if kind == "linux" then
    add(self.id .. ".tmp.hdf", true)
    add("b" .. self.number, true)
    add("x" .. self.geometry.number, false) -- made by RasGeomPreprocess when absent
  else
    add("prj", true)
    add(self.id, true)
    add(g, true)
    add(g .. ".hdf", false)
    add("c" .. self.geometry.number, false)
    add(fl, true)
    add(fl .. ".hdf", false) -- the unsteady flow's imported data (met, precipitation)
    if self.sediment then add(self.sediment, true) end
    if self.water_quality then add(self.water_quality, true) end
  end
  local restart = self:restart()
  if restart and not prj:find(restart) then
    if opts and opts.waits then
      need[#need + 1] = restart
    else
      missing[#missing + 1] = ("%s (the restart file %s names)"):format(json.utf8(restart),
        path.basename(self.flow.file))
    end
  end
  add_name(restart)
  -- the DSS files the boundaries read (the Linux engine has their data in
  -- the .bNN: there they come along only when present)
  for _, rel in ipairs(self.flow.dss) do
    if prj:find(rel) or kind == "linux" then
      add_name(rel)
    else
      missing[#missing + 1] = ("%s (a DSS file %s reads)"):format(json.utf8(rel), path.basename(self.flow.file))
    end
  end
  -- gridded meteorological data (rain on grid): the files that are there;
  -- gridded precipitation in use must be, for the Windows engine (as DSS
  -- boundaries above: the Linux one is given what the .bNN holds)
  for _, rel in ipairs(self.flow.met or {}) do
    if prj:find(rel) or kind == "linux" or not (self.flow.met_required or {})[rel] then
      add_name(rel)
    else
      missing[#missing + 1] = ("%s (the gridded precipitation %s reads)"):format(json.utf8(rel),
        path.basename(self.flow.file))
    end
  end
  -- (the plan's output DSS file is not staged: the engine writes a new one,
  -- which does not come back; where the boundaries read it, it came above)
  return need, missing
end

-- The restart file the plan starts from, as a name in the project folder:
-- where the flow names it (a subfolder too) when it is there, else in the
-- project folder itself, where a plan of the project writes it (a plan
-- this one waits for, say). nil when the flow starts from none.
function Plan:restart()
  local named = self.flow and self.flow.restart
  if not named or self.project:find(named) then return named end
  return path.basename(named)
end

-- Shell glob (fnmatch) escaping for names used in patterns.
local function glob_escape(s) return (s:gsub("[%[%]%*%?\\]", "\\%0")) end

-- Files a run produces, as glob patterns on names in the work folder: the
-- plan's own outputs (logs, restart files) and the geometry's outputs, which
-- the plans of one geometry share. The result file itself is handled by the
-- engine spec (its name differs by engine).
function Plan:outputs(kind)
  local stem = glob_escape(self.project.name)
  local own = {
    stem .. "." .. self.id .. ".computeMsgs.txt", stem .. "." .. self.id .. ".data_errors.txt",
    stem .. ".bco" .. self.number,
    stem .. ".[oO]" .. self.number, stem .. "." .. self.id .. ".*.rst",
  }
  local gn = self.geometry and self.geometry.number or "00"
  local geometry = { stem .. ".x" .. gn }
  if kind ~= "linux" then
    geometry[#geometry + 1] = stem .. ".c" .. gn
    geometry[#geometry + 1] = stem .. ".g" .. gn .. ".hdf"
  end
  return own, geometry
end

function Plan:result_path()
  local prj = self.project
  return prj:file(self.id .. ".hdf") or path.join(prj.dir, prj.name .. "." .. self.id .. ".hdf")
end

-- The files whose changes make a result out of date: plan, geometry and
-- flow (and the flow's HDF of imported data), and the sediment and water
-- quality data a plan uses; the restart file and the input DSS file the
-- flow names (not the plan's DSS file, which runs write); and, where
-- Windows HEC-RAS wrote them, the Linux engine's inputs (.pNN.tmp.hdf,
-- .bNN).
function Plan:sources()
  local out = { self.file }
  if self.geometry and self.geometry.file then out[#out + 1] = self.geometry.file end
  if self.flow and self.flow.file then out[#out + 1] = self.flow.file end
  local prj = self.project
  local function named(name)
    local actual = prj:find(name)
    if actual then out[#out + 1] = path.join(prj.dir, actual) end
  end
  if self.flow then
    named(self:restart())
    -- not the DSS file the plan writes (it would be newer than the result
    -- after every run): the same path, or the same name when the plan names
    -- it by a path outside the project
    local out_dss = self.dss_path or self.dss
    for _, rel in ipairs(self.flow.dss or {}) do
      local same = out_dss and (self.dss_path and rel or path.basename(rel)):lower() == out_dss:lower()
      if not same then named(rel) end
    end
    for _, rel in ipairs(self.flow.met or {}) do named(rel) end
  end
  -- the project's own files, where they are there: sediment and water
  -- quality data; the Linux engine's inputs
  local exts = { self.id .. ".tmp.hdf", "b" .. (self.number or "") }
  if self.flow then exts[#exts + 1] = self.flow.id .. ".hdf" end
  exts[#exts + 1] = self.sediment
  exts[#exts + 1] = self.water_quality
  for _, ext in ipairs(exts) do
    local f = prj:file(ext)
    if f then out[#out + 1] = f end
  end
  return out
end

-- "none": no result; "stale": a source is newer (reason names it);
-- "current": the result is newer than all of sources().
function Plan:result_state()
  if self.missing or self.broken then return "missing", self.error end
  for _, f in ipairs({ self.geometry, self.flow }) do
    if f.missing then
      return "missing", ("%s: its file %s.%s is missing"):format(path.basename(self.file),
        self.project.name, f.id)
    end
  end
  local rmt = fs.mtime(self:result_path())
  if not rmt then return "none", "no result file" end
  -- a time after now (a wrong clock where the file was written) tells
  -- nothing of which is newer: such a result is not taken as up to date
  local soon = os.time() + 2
  local function future(t) return ("dated in the future (%s; a wrong clock where it was written?)")
    :format(os.date("%Y-%m-%d %H:%M:%S", math.floor(t))) end
  if rmt > soon then return "stale", "the result is " .. future(rmt) end
  for _, src in ipairs(self:sources()) do
    local m = fs.mtime(src)
    if m and m > rmt then
      return "stale", ("%s is newer than the result%s"):format(path.basename(src),
        m > soon and (" (it is " .. future(m) .. ")") or "")
    end
  end
  -- another plan's result copied over this one's is not this plan's (only
  -- the plan's extension counts: a project saved under a new name keeps them)
  local made_for = require("rasrun.results").plan_file(self:result_path())
  local ext = made_for and made_for:gsub("^.*[\\/]", ""):match("%.([^.]+)$")
  if ext and ext:lower() ~= self.id then
    return "stale", ("the result was made for plan %s, not %s"):format(made_for:gsub("^.*[\\/]", ""),
      path.basename(self.file))
  end
  return "current", "result newer than its inputs"
end

return M
