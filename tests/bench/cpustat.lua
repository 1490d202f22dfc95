-- CPU time from /proc, for the benchmarks' "where the time goes" columns.
--   cpustat.process() -> own, children   CPU seconds of this process and of
--                                         its waited-for children
--   cpustat.idle()    -> seconds the machine's cores have been idle
local M = {}

local TICK = 100 -- USER_HZ: /proc counts in 1/100 s on Linux

local function first_line(file)
  local f = io.open(file)
  if not f then return nil end
  local line = f:read("l")
  f:close()
  return line
end

function M.process()
  -- after the command's closing parenthesis: utime is the 12th field,
  -- stime, cutime and cstime follow
  local line = first_line("/proc/self/stat")
  if not line then return nil end
  local v = {}
  for x in line:match("%) (.*)"):gmatch("%S+") do v[#v + 1] = x end
  return (v[12] + v[13]) / TICK, (v[14] + v[15]) / TICK
end

function M.idle()
  local line = first_line("/proc/stat") -- "cpu  user nice system idle ..."
  local idle = line and line:match("^cpu%s+%d+%s+%d+%s+%d+%s+(%d+)")
  return idle and tonumber(idle) / TICK
end

return M
