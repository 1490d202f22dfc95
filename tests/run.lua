-- The test runner: loads every tests/test_*.lua (each defines Test* tables)
-- and runs them with LuaUnit. Ends with the line "N passed, N failed".
local fs = require "rasrun.fs"
package.path = "tests/?.lua;" .. package.path
local lu = require "luaunit"

for _, name in ipairs(fs.list("tests")) do
  if name:match("^test_.*%.lua$") then dofile("tests/" .. name) end
end

local runner = lu.LuaUnit.new()
runner:setOutputType("text")
local args = { ... }
if #args == 0 then args = { "-v" } end
runner:runSuite(table.unpack(args))
local r = runner.result
io.stdout:flush()
print(("%d passed, %d failed"):format(r.successCount, r.failureCount + r.errorCount))
return (r.failureCount + r.errorCount) == 0 and 0 or 1
