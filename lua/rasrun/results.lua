-- Facts from a HEC-RAS result file (<name>.pNN.hdf), in both the 6.x and the
-- 5.0.7 layouts, read through rasrun.hdf.
--
--   local r, err = results.read(path)
--   r.kind        "unsteady" | "steady" | nil (no results at all)
--   r.solution    e.g. "Unsteady Finished Successfully" (nil when absent)
--   r.run_window  { start=, stop= (naive seconds), text= }; { text=, error= }
--                 when the text cannot be read
--   r.volume      { error_percent=, error=, starting=, ending=, units=, layout= }
--   r.messages    compute messages text (nil when absent)
--   r.plan        { name=, short_id=, file=, geometry=, flow=, start=, stop= }
--   r.file_type, r.version, r.units, r.has_results, r.mtime, r.size
--   r.has_summary (the Summary group is there), r.unreadable (names of its
--                 attributes whose values cannot be read, or nil)
local hdf = require "rasrun.hdf"
local hecdate = require "rasrun.hecdate"

local M = {}

local SUMMARY = { unsteady = "/Results/Unsteady/Summary", steady = "/Results/Steady/Summary" }
local MESSAGES = "/Results/Summary/Compute Messages (text)"
local MAX_WS_BASE = "/Results/Unsteady/Output/Output Blocks/Base Output/Summary Output/2D Flow Areas"
local AREA_ATTRS = "/Geometry/2D Flow Areas/Attributes"

-- 6.x: attributes of Summary/Volume Accounting; 5.0.7: "Vol Accounting ..."
-- attributes on the Summary group itself (s).
local VOLUME_ATTRS = { "Error Percent", "Error", "Volume Starting", "Volume Ending", "Vol Accounting in" }
local function volume(f, summary, s)
  local a = f:attrs(summary .. "/Volume Accounting", VOLUME_ATTRS)
  if a and a["Error Percent"] ~= nil then
    return { error_percent = a["Error Percent"], error = a["Error"],
             starting = a["Volume Starting"], ending = a["Volume Ending"],
             units = a["Vol Accounting in"], layout = "6.x" }
  end
  if s["Vol Accounting Error Percentage"] ~= nil then
    return { error_percent = s["Vol Accounting Error Percentage"], error = s["Vol Accounting Error"],
             starting = s["Vol Accounting Cell Start"], ending = s["Vol Accounting Cell End"],
             units = s["Vol Accounting"], layout = "5.0.7" }
  end
  return nil
end

local function messages(f)
  local v = f:read(MESSAGES)
  if type(v) == "table" then v = table.concat(v, "\n") end
  if type(v) ~= "string" then return nil end
  return (v:gsub("\r\n", "\n"):gsub("\r", "\n"))
end

local PLAN_ATTRS = { "Plan Name", "Plan Title", "Plan ShortID", "Plan Filename", "Geometry Filename",
                     "Flow Filename", "Simulation Start Time", "Simulation End Time" }
local function plan_info(f)
  local a = f:attrs("/Plan Data/Plan Information", PLAN_ATTRS)
  if not a then return nil end
  return { name = a["Plan Name"], title = a["Plan Title"], short_id = a["Plan ShortID"],
           file = a["Plan Filename"], geometry = a["Geometry Filename"],
           flow = a["Flow Filename"], start = a["Simulation Start Time"],
           stop = a["Simulation End Time"] }
end

-- Only the attributes read here are fetched (files carry dozens).
local ROOT_ATTRS = { "File Type", "File Version", "Units System" }
local SUMMARY_ATTRS = { "Solution", "Computation Time Total", "Maximum WSEL Error",
  "Time Stamp Solution Went Unstable", "Time Solution Went Unstable", "Run Time Window",
  "Vol Accounting Error Percentage", "Vol Accounting Error", "Vol Accounting Cell Start",
  "Vol Accounting Cell End", "Vol Accounting" }

-- The file's plan information, opening it for that alone; nil when absent.
local function plan_info_of(path)
  local f = hdf.open(path)
  if not f then return nil end
  local info = plan_info(f)
  f:close()
  return info
end

-- r.plan, read when first asked for.
local LAZY = { __index = function(r, k)
  if k ~= "plan" then return nil end
  local v = plan_info_of(r.path) or false
  rawset(r, "plan", v)
  return v
end }

-- Reads what the checks need; nil, message when the file cannot be read.
function M.read(path)
  local f, err = hdf.open(path)
  if not f then return nil, err end
  local st = f:stat()
  local root = f:attrs("/", ROOT_ATTRS) or {}
  local groups = f:members("/Results")
  local r = { path = path, mtime = st.mtime, size = st.size,
              file_type = root["File Type"], version = root["File Version"],
              units = root["Units System"], has_results = groups ~= nil }
  for _, g in ipairs(groups or {}) do
    if g == "Unsteady" then r.kind = "unsteady"
    elseif g == "Steady" and not r.kind then r.kind = "steady" end
  end
  local summary = r.kind and SUMMARY[r.kind]
  local s, unread
  if summary then s, unread = f:attrs(summary, SUMMARY_ATTRS) end
  r.has_summary, r.unreadable = s ~= nil, unread
  if s then
    r.solution = s["Solution"]
    r.computation_time = s["Computation Time Total"]
    r.max_wsel_error = s["Maximum WSEL Error"]
    local ut = s["Time Stamp Solution Went Unstable"] or s["Time Solution Went Unstable"]
    if type(ut) == "string" and ut ~= "Not Applicable" then r.unstable_at = ut end
    if s["Run Time Window"] then
      local a, b = hecdate.parse_window(s["Run Time Window"])
      r.run_window = a and { start = a, stop = b, text = s["Run Time Window"] }
        or { text = s["Run Time Window"], error = b }
    end
    r.volume = volume(f, summary, s)
  end
  r.messages = messages(f)
  f:close()
  -- r.plan is read when first asked for: the checks need it only to explain
  -- a file without results.
  return setmetatable(r, LAZY)
end

-- The plan file a result says it was made for ("EX1.p01", as the file names
-- it), or nil when it does not say.
function M.plan_file(path)
  local info = plan_info_of(path)
  return info and type(info.file) == "string" and info.file ~= "" and info.file or nil
end

-- Names of the 2D flow areas with summary maxima.
function M.areas(path)
  local f, err = hdf.open(path)
  if not f then return nil, err end
  local names = f:exists(MAX_WS_BASE) and f:members(MAX_WS_BASE) or {}
  f:close()
  return names
end

-- The number of computational cells of each 2D area (the geometry's
-- attributes table), by name; {} when the file does not say.
local function cell_counts(f)
  local rows = f:exists(AREA_ATTRS) and f:read(AREA_ATTRS)
  local counts = {}
  for _, row in ipairs(type(rows) == "table" and rows or {}) do
    if type(row) == "table" and row.Name and math.type(row["Cell Count"]) == "integer" then
      counts[row.Name] = row["Cell Count"]
    end
  end
  return counts
end

-- Maximum water surface of a 2D area: { wsel = {...}, time = {...} } (one
-- entry per computational cell); nil, message when absent. 6.x files carry
-- more entries than cells: the boundary's ghost cells come after them (and
-- read 0): those are left out.
function M.max_wsel(path, area)
  local f, err = hdf.open(path)
  if not f then return nil, err end
  local ds = MAX_WS_BASE .. "/" .. area .. "/Maximum Water Surface"
  local rows, rerr = f:read(ds)
  local n = rows and cell_counts(f)[area]
  f:close()
  if not rows then return nil, rerr end
  local wsel, time = rows[1] or {}, rows[2] or {}
  if n and n < #wsel then
    wsel, time = table.move(wsel, 1, n, 1, {}), table.move(time, 1, math.min(n, #time), 1, {})
  end
  return { wsel = wsel, time = time }
end

return M
