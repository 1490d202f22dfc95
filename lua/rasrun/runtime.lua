-- Process-wide facts of one rasrun invocation: which recipe is running,
-- whether any of its runs failed (the exit status of `rasrun run`), and the
-- signal that interrupted one (interrupted: the recipe runs nothing more).
local M = { recipe = nil, runs = {}, interrupted = nil }

-- A signal as the user knows it: "Ctrl-C", "SIGTERM", ...
function M.signal_name(sig)
  return ({ [1] = "a hangup", [2] = "Ctrl-C", [3] = "Ctrl-\\", [15] = "SIGTERM" })[sig] or ("signal " .. sig)
end

-- Records a finished run (from pool:run).
function M.note_run(run)
  M.runs[#M.runs + 1] = run
end

-- Stops the recipe with exit status code: `rasrun run` prints message
-- without a Lua traceback, unless said (the run said it all already); the
-- REPL shows it as any error.
local Stop = { __tostring = function(e)
  return e.message or ("stopped (exit status %d)"):format(e.exit_code)
end }
function M.stop(code, message, said)
  error(setmetatable({ exit_code = code, message = message, said = said }, Stop), 0)
end

-- Whether e is what M.stop raised (rasrun.fail included).
function M.is_stop(e) return getmetatable(e) == Stop end

-- 1 when any plan of any run failed or was cancelled, else 0.
function M.status()
  for _, run in ipairs(M.runs) do
    if not run.ok then return 1 end
  end
  return 0
end

return M
