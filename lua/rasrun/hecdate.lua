-- HEC date and time strings.
--
-- HEC-RAS writes dates as DDMONYYYY with the month in any case ("17MAR2026",
-- "28Feb2021"), times as "HHMM" or "HH:MM[:SS]", and allows hour 24 for the
-- end of a day ("02JAN1900 2400"). Values here are naive civil times (no
-- time zone), returned as seconds since 1970-01-01 00:00 of that naive clock,
-- so they compare with each other and, through local_naive(), with a clock.
local M = {}

local MONTHS = { JAN = 1, FEB = 2, MAR = 3, APR = 4, MAY = 5, JUN = 6,
                 JUL = 7, AUG = 8, SEP = 9, OCT = 10, NOV = 11, DEC = 12 }

-- Days from 1970-01-01 to y-m-d (proleptic Gregorian), after H. Hinnant.
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return m <= 2 and y + 1 or y, m, d
end

-- Days in month mo of year y (proleptic Gregorian leap years).
local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
local function civil_day_count(y, mo)
  if mo == 2 and y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) then return 29 end
  return MONTH_DAYS[mo]
end

-- Naive seconds for a calendar date and time of day.
function M.naive(y, mo, d, h, mi, s)
  return days_from_civil(y, mo, d) * 86400 + (h or 0) * 3600 + (mi or 0) * 60 + (s or 0)
end

-- Parses "17MAR2026 15:26:14", "01JAN2024,0000", "02Jan1900 2400",
-- "02JAN1900" (midnight). Returns naive seconds, or nil and a reason.
function M.parse(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local d, mon, y, rest = s:match("^%s*(%d%d?)(%a%a%a)(%d%d%d%d)[%s,]*(.-)%s*$")
  if not d then return nil, ("not a HEC date: %q"):format(s) end
  local mo = MONTHS[mon:upper()]
  if not mo then return nil, ("unknown month %q in %q"):format(mon, s) end
  local h, mi, sec = 0, 0, 0
  if rest ~= "" then
    local a, b, c = rest:match("^(%d%d?):(%d%d):?(%d*)$")
    if a then
      h, mi, sec = tonumber(a), tonumber(b), tonumber(c) or 0
    else
      a, b = rest:match("^(%d%d)(%d%d)$")
      if not a then return nil, ("bad time %q in %q"):format(rest, s) end
      h, mi = tonumber(a), tonumber(b)
    end
  end
  if h > 24 or mi > 59 or sec > 59 or (h == 24 and (mi > 0 or sec > 0)) then
    return nil, ("bad time in %q"):format(s)
  end
  y, d = tonumber(y), tonumber(d)
  -- the day must be one of the month's (no 31FEB, no 00JAN)
  if d < 1 or d > civil_day_count(y, mo) then return nil, ("no such day in %q"):format(s) end
  return M.naive(y, mo, d, h, mi, sec)
end

-- "A to B" windows (Run Time Window, Simulation Time Window).
function M.parse_window(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local a, b = s:match("^%s*(.-)%s+to%s+(.-)%s*$")
  if not a then return nil, ("not a time window: %q"):format(s) end
  local ta, ea = M.parse(a)
  if not ta then return nil, ea end
  local tb, eb = M.parse(b)
  if not tb then return nil, eb end
  return ta, tb
end

-- Formats naive seconds as HEC-RAS does in Run Time Window ("17MAR2026 15:26:14").
function M.format(t)
  local days, secs = t // 86400, t % 86400
  local y, mo, d = civil_from_days(days)
  local names = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" }
  return ("%02d%s%04d %02d:%02d:%02d"):format(d, names[mo], y, secs // 3600, secs % 3600 // 60,
    secs % 60)
end

-- The naive local clock reading for an epoch time, given the clock's UTC
-- offset in seconds (the engine host's offset: results carry its wall clock).
function M.local_naive(epoch, utc_offset)
  return math.floor(epoch) + (utc_offset or 0)
end

return M
