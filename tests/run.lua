-- The test runner: loads every tests/test_*.lua (each defines Test* tables)
-- and runs them with LuaUnit. Ends with the line "N passed, N failed".
local fs = require "rasrun.fs"
package.path = "tests/?.lua;" .. package.path
local lu = require "luaunit"

for _, name in ipairs(fs.list("tests")) do
  if name:match("^test_.*%.lua$") then dofile("tests/" .. name) end
end

-- Each test is a recipe of its own: a run one test interrupts (sending
-- itself Ctrl-C, and catching the stop) does not stop the next test's runs,
-- nor make the suite exit as interrupted.
local runtime = require "rasrun.runtime"
for name, class in pairs(_G) do
  if type(name) == "string" and name:match("^Test") and type(class) == "table" then
    for k, f in pairs(class) do
      if type(k) == "string" and k:match("^test") and type(f) == "function" then
        class[k] = function(...)
          runtime.interrupted = nil
          return f(...)
        end
      end
    end
  end
end

local runner = lu.LuaUnit.new()
runner:setOutputType("text")
local args = { ... }
if #args == 0 then args = { "-v" } end
runner:runSuite(table.unpack(args))
local r = runner.result
runtime.interrupted = nil
io.stdout:flush()
print(("%d passed, %d failed"):format(r.successCount, r.failureCount + r.errorCount))
return (r.failureCount + r.errorCount) == 0 and 0 or 1
