-- SSH workers: settings (with ~/.ssh/config), probing, and stopping engines
-- that a dead controller left on SSH hosts.
local fs = require "rasrun.fs"
local path = require "rasrun.path"
local sshconfig = require "rasrun.sshconfig"
local engine = require "rasrun.engine"
local count = require("rasrun.progress").count

local M = {}

local DEFAULT_KEYS = { "~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa" }

-- macs = / ciphers =: a comma list or an array of names, in order of
-- preference (as OpenSSH's MACs and Ciphers).
local function method_list(v)
  if type(v) == "table" then return table.concat(v, ",") end
  if v ~= nil and type(v) ~= "string" then
    error(("ssh worker: macs and ciphers are lists of names, not a %s"):format(type(v)), 3)
  end
  return v
end

-- What the C side needs to connect as this worker. No secret is in it: a
-- password or passphrase stays in its environment variable.
function M.settings(w)
  local cfg = sshconfig.resolve(w.host, w.ssh_config)
  local ids = {}
  if w.identity then
    ids[1] = path.expanduser(w.identity)
  elseif #cfg.identity_files > 0 then
    ids = cfg.identity_files
  elseif not w.password_env and not w.agent then
    for _, k in ipairs(DEFAULT_KEYS) do
      local f = path.expanduser(k)
      if fs.isfile(f) then ids[#ids + 1] = f end
    end
  end
  local agent = w.agent
  if agent == nil then agent = not w.identity and not w.password_env and os.getenv("SSH_AUTH_SOCK") ~= nil end
  return {
    name = w.name, host = cfg.hostname or w.host, hostname = cfg.hostname or w.host,
    port = w.port or cfg.port or 22, user = w.user or cfg.user or os.getenv("USER") or "root",
    identities = ids, agent = agent and true or false,
    password_env = w.password_env, passphrase_env = w.passphrase_env,
    known_hosts = path.expanduser(w.known_hosts or "~/.ssh/known_hosts"),
    host_key = w.host_key or "strict",
    connect_timeout = w.connect_timeout or 10, io_timeout = w.io_timeout or 60,
    keepalive = w.keepalive or 15,
    macs = method_list(w.macs), ciphers = method_list(w.ciphers),
  }
end

function M.connect(w)
  return require("rasrun.ssh_c").connect(M.settings(w))
end

local function gib(kib) return ("%.1f GiB"):format(kib / 2 ^ 20) end

-- Connect, authenticate, look for the engine, count cores, measure free disk
-- in the work folder (relative work folders are under the login home).
function M.probe(w)
  local s = M.settings(w)
  local rep = { worker = w.name, host = ("%s@%s:%d"):format(s.user, s.hostname, s.port), checks = {} }
  local function add(name, ok, detail) rep.checks[#rep.checks + 1] = { name = name, ok = ok, detail = detail } end
  local c, err = require("rasrun.ssh_c").connect(s)
  if not c then
    add("connect", false, err)
    return rep
  end
  add("connect", true, "connected and authenticated")
  local prog = engine.program(w.engine)
  local script = table.concat({
    "echo cores $(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)",
    "W=" .. path.shell_quote(w.workdir) .. "; mkdir -p \"$W\" 2>/dev/null",
    "[ -w \"$W\" ] || echo 'disk unwritable'",
    "echo disk $(df -Pk \"$W\" 2>/dev/null | awk 'NR==2 {print $4}')",
    "if [ -x " .. path.shell_quote(prog) .. " ]; then echo engine ok; else echo engine missing; fi",
  }, "\n")
  local code, out, eout = c:exec(script, nil, 30)
  c:close()
  if not code then
    add("probe", false, out)
    return rep
  end
  rep.cores = tonumber(out:match("cores (%d+)"))
  local kib = tonumber(out:match("disk (%d+)"))
  rep.free_bytes = kib and kib * 1024
  add("engine", out:find("engine ok", 1, true) ~= nil,
    out:find("engine ok", 1, true) and (prog .. " is there") or (prog .. ": not found on the host"))
  add("cores", rep.cores ~= nil, rep.cores and ("%s, %s"):format(count(rep.cores, "core"), count(w.slots, "slot"))
    or ("cannot count cores: " .. eout))
  if out:find("disk unwritable", 1, true) then
    add("disk", false, ("work folder %s cannot be made or written"):format(w.workdir))
  else
    add("disk", kib ~= nil, kib and (gib(kib) .. " free in " .. w.workdir) or ("cannot read free space: " .. eout))
  end
  return rep
end

-- What a killed controller left on SSH hosts, once per host: engines (its
-- journal's "launched" lines without an end) are stopped, then the slot
-- folders its attempts used (slot_dirs: worker name -> list) removed with
-- the run's folder when nothing else is in it (kept attempts stay). The
-- resumed run may use the same folders again: it makes them anew.
function M.clean_after(workers, orphans, slot_dirs, say)
  local ssh_c = require "rasrun.ssh_c"
  for _, w in ipairs(workers) do
    if w.type == "ssh" then
      local s = M.settings(w)
      local mine, dirs = {}, slot_dirs[w.name] or {}
      for _, e in ipairs(orphans) do
        if e.host == s.hostname and e.worker == w.name then mine[#mine + 1] = e end
      end
      if #mine > 0 or #dirs > 0 then
        local c, err = ssh_c.connect(s)
        if not c then
          say(("cannot reach %s to clean up after the interrupted run (%d engine(s) to stop): %s")
            :format(w.name, #mine, err))
        else
          local home
          local function absolute(dir)
            if dir:sub(1, 1) == "/" then return dir end
            if not home then
              -- (marked: a login script may print lines of its own first)
              local _, out = c:exec("printf 'rasrun-home %s\\n' \"$PWD\"")
              home = (out or ""):match("rasrun%-home ([^\n]*)") or ""
            end
            return home .. "/" .. dir
          end
          for _, e in ipairs(mine) do
            -- Usually gone already: when the controller died its channel
            -- closed, and the engine's watchdog on the host stopped it.
            local _, out = c:exec(ssh_c.kill_script(e.pid, absolute(e.workdir), w.kill_grace or 5), nil, 60)
            if out and out:find("stopped", 1, true) then
              say(("stopped engine pid %d of plan %s on %s, left by the interrupted run")
                :format(e.pid, e.plan, w.name))
            end
          end
          -- the orphans' folders are among them: every attempt is journaled with its folder
          local quoted, parents = {}, {}
          for _, dir in ipairs(dirs) do
            quoted[#quoted + 1] = path.shell_quote(absolute(dir))
            parents[path.shell_quote(path.dirname(absolute(dir)))] = true
          end
          local cmd = "rm -rf " .. table.concat(quoted, " ")
          for parent in pairs(parents) do cmd = cmd .. "; rmdir " .. parent .. " 2>/dev/null" end
          c:exec(cmd .. "; true", nil, 60)
          c:close()
        end
      end
    end
  end
end

return M
