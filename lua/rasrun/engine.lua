-- How a HEC-RAS engine runs a plan: which files it needs, which commands run
-- in the work folder, what it leaves behind. One spec per (plan, engine).
--
--   engine = { kind = "windows", home = "C:/Program Files (x86)/HEC/HEC-RAS/6.6" }
--     Ras.exe -c "<name>.prj" "<name>.pNN", result <name>.pNN.hdf
--   engine = { kind = "linux", home = "/opt/hecras/6.6" }
--     [RasGeomPreprocess <name>.pNN.tmp.hdf xGG]   only when the geometry changed
--     RasUnsteady <name>.pNN.tmp.hdf xGG          result written into the .tmp.hdf,
--                                                 brought back as <name>.pNN.hdf
--     with LD_LIBRARY_PATH=<home>/libs:<home>/libs/mkl:<home>/libs/rhel_8
local fs = require "rasrun.fs"
local path = require "rasrun.path"

local M = {}

M.kinds = { windows = true, linux = true }

-- Validates an engine table; returns a normalised copy or raises naming the field.
function M.check(e, where)
  where = where or "engine"
  if type(e) ~= "table" then
    error(("%s: engine must be a table {kind = \"linux\"|\"windows\", home = path}"):format(where), 3)
  end
  if not M.kinds[e.kind] then
    error(("%s: engine.kind must be \"linux\" or \"windows\", got %s"):format(where,
      e.kind == nil and "nothing" or ("%q"):format(tostring(e.kind))), 3)
  end
  if e.home == nil or e.home == "" then
    error(("%s: engine.home (the HEC-RAS install folder) is missing"):format(where), 3)
  end
  if type(e.home) ~= "string" then
    error(("%s: engine.home (the HEC-RAS install folder) must be a folder's path, got %s")
      :format(where, type(e.home) == "number" and tostring(e.home) or ("a " .. type(e.home))), 3)
  end
  if e.preprocess ~= nil and type(e.preprocess) ~= "boolean" then
    error(("%s: engine.preprocess must be true or false, got %s"):format(where, tostring(e.preprocess)), 3)
  end
  for k in pairs(e) do
    if k ~= "kind" and k ~= "home" and k ~= "preprocess" then
      error(("%s: unknown field engine.%s (an engine has kind, home and preprocess)"):format(where, tostring(k)), 3)
    end
  end
  return { kind = e.kind, home = e.home:gsub("[/\\]+$", ""), preprocess = e.preprocess }
end

-- Workers whose engines are the same share one entry (and the specs made
-- for it): the same kind, install folder and preprocessor setting.
function M.key(e) return e.kind .. ":" .. tostring(e.preprocess) .. ":" .. e.home end

-- The Linux engine needs the geometry preprocessor when the preprocessed
-- geometry (.xGG) is missing or older than the geometry itself. memo (a
-- table, optional) keeps the answer per geometry for the specs of one run.
local function geometry_changed(plan, memo)
  local g = plan.geometry
  if memo and memo[g] ~= nil then return memo[g] end
  local changed = false
  local x = plan.project:file("x" .. g.number)
  if not x then
    changed = true
  else
    local xt = fs.mtime(x) or 0
    for _, f in ipairs({ g.file, g.hdf }) do
      local t = f and fs.mtime(f)
      if t and t > xt then changed = true end
    end
  end
  if memo then memo[g] = changed end
  return changed
end

-- A file's mtime; with cache (a table), each file is looked at once.
local function mtime(f, cache)
  if not cache then return fs.mtime(f) end
  local t = cache[f]
  if t == nil then
    t = fs.mtime(f) or false
    cache[f] = t
  end
  return t or nil
end

-- The Linux engine reads only what Windows HEC-RAS put in the .pNN.tmp.hdf
-- and .bNN: a plan, geometry or flow file changed since is not in the run.
-- Copies can reorder file times by a moment: 2 s count as the same time.
-- The geometry and flow files are shared by plans: with memo (the specs of
-- one run), each is looked at once.
local function text_newer_than_inputs(plan, memo)
  local prj = plan.project
  local made = math.huge
  for _, ext in ipairs({ plan.id .. ".tmp.hdf", "b" .. plan.number }) do
    local f = prj:file(ext)
    local t = f and fs.mtime(f)
    if t and t < made then made = t end
  end
  if memo then memo.mtimes = memo.mtimes or {} end
  for i, f in ipairs({ plan.file, plan.geometry.file, plan.flow.file }) do
    local t = mtime(f, i > 1 and memo and memo.mtimes or nil)
    if t and t > made + 2 then return path.basename(f) end
  end
end

local function linux_spec(plan, e, memo, opts)
  if plan.flow_kind ~= "unsteady" then
    return nil, ("plan %s is %s flow: the linux engine (RasUnsteady) runs unsteady plans only")
      :format(plan.number, plan.flow_kind or "an unknown")
  end
  local inputs, missing = plan:inputs("linux", opts)
  local stem = plan.project.name
  local tmp = plan.project:name_of(plan.id .. ".tmp.hdf") -- as staged: its case on disk
  local x = "x" .. plan.geometry.number
  local steps = {}
  local preprocess = e.preprocess == true or (e.preprocess ~= false and geometry_changed(plan, memo))
  if preprocess then
    steps[#steps + 1] = { e.home .. "/bin/RasGeomPreprocess", tmp, x }
  else
    -- Without the preprocessor RasUnsteady needs the .xGG: it is required then.
    local found, want = false, (stem .. "." .. x):lower()
    for _, n in ipairs(inputs) do found = found or n:lower() == want end
    if not found then missing[#missing + 1] = stem .. "." .. x end
  end
  if #missing > 0 then
    local windows_made = false
    for _, m in ipairs(missing) do
      local low = m:lower()
      windows_made = windows_made or low:match("%.tmp%.hdf$") or low:match("%.[bx]%d%d$")
    end
    return nil, ("the linux engine needs %s%s"):format(table.concat(missing, ", "),
      windows_made and " (made by HEC-RAS on Windows)" or "")
  end
  steps[#steps + 1] = { e.home .. "/bin/RasUnsteady", tmp, x }
  local newer = text_newer_than_inputs(plan, memo)
  local warning = newer and ("%s changed after %s was made: the linux engine runs what that file "
    .. "holds (make it again in HEC-RAS on Windows if the change matters)"):format(newer, tmp)
  local own, geom = plan:outputs("linux")
  local libs = e.home .. "/libs"
  -- RasUnsteady writes only the .tmp.hdf (and new files); the boundary file,
  -- the preprocessed geometry and restart files are read. A worker may
  -- hard-link those instead of copying them. DSS files can be written: copied.
  -- So is the .xGG when RasGeomPreprocess runs: it rewrites that file, and
  -- through a link would rewrite the project's own.
  -- The boundary file is text, which the Linux engine reads without CR:
  -- Windows HEC-RAS writes it with CR LF, and a worker stages a copy without
  -- them then (the project keeps its own).
  local links, text = {}, {}
  for _, n in ipairs(inputs) do
    local low = n:lower()
    local boundary = low:match("%.b%d%d$")
    if boundary or (low:match("%.x%d%d$") and not preprocess) or low:match("%.rst$") then
      links[#links + 1] = n
    end
    if boundary then text[#text + 1] = n end
  end
  return {
    inputs = inputs, links = links, text = text, steps = steps, warning = warning,
    env = { LD_LIBRARY_PATH = libs .. ":" .. libs .. "/mkl:" .. libs .. "/rhel_8" },
    -- into the project's result as it is spelt there (EX1.P01.HDF), not beside it
    result = { from = tmp, to = plan.project:name_of(plan.id .. ".hdf") },
    collect = own,
    geometry = { key = plan.project.dir .. "/" .. plan.geometry.id, files = geom },
  }
end

local function windows_spec(plan, e, opts)
  local inputs, missing = plan:inputs("windows", opts)
  if #missing > 0 then
    return nil, ("missing project files: %s"):format(table.concat(missing, ", "))
  end
  local outside = plan.flow.dss_outside or {}
  local warning = #outside > 0 and ("%s reads DSS files outside the project folder, which are not "
    .. "staged: the engine's host must have them there (%s)"):format(path.basename(plan.flow.file),
    table.concat(outside, ", ")) or nil
  local prj = plan.project
  local result = prj.name .. "." .. plan.id .. ".hdf"
  local own, geom = plan:outputs("windows")
  return {
    inputs = inputs, warning = warning,
    steps = { { e.home .. "/Ras.exe", "-c", prj:name_of("prj"), prj:name_of(plan.id) } },
    env = {},
    result = { from = result, to = prj:name_of(plan.id .. ".hdf") },
    collect = own,
    geometry = { key = prj.dir .. "/" .. plan.geometry.id, files = geom },
  }
end

-- The spec for running plan on engine e, or nil and why it cannot run there.
-- memo: a table shared by the specs of one run (the plans of a geometry then
-- look at its files once), or nil. opts: as for Plan:inputs.
function M.spec(plan, e, memo, opts)
  if plan.missing or plan.broken then return nil, plan.error end
  if e.kind == "linux" then return linux_spec(plan, e, memo, opts) end
  return windows_spec(plan, e, opts)
end

-- Where a local install keeps its main program (to check that it is there).
function M.program(e)
  if e.kind == "linux" then return path.join(e.home, "bin", "RasUnsteady") end
  return path.join(e.home, "Ras.exe")
end

return M
