-- Test hosts: OpenSSH sshd in network namespaces that the test creates, each
-- joined to this namespace by a veth pair, with its own host key, work
-- folder and copy of the simulated HEC-RAS install. Needs root.
--
--   local env = testhosts.start(2)   -- hosts env.hosts[1..2]
--   env.hosts[i] = { name=, addr=, ns=, veth=, dir=, work=, home=, sshd_pid= }
--   env.key, env.known_hosts          client key and a known_hosts with every host
--   testhosts.cut(h) / testhosts.mend(h)   take a host's link down / up
--   testhosts.stop(env)
local fs = require "rasrun.fs"
local sys = require "rasrun.sys"
local H = require "helpers"

local M = {}

local function sh(argv, what)
  local r = assert(sys.run(argv, { timeout = 30 }))
  if r.code ~= 0 then
    error(("%s failed (%d): %s"):format(what or table.concat(argv, " "), r.code, r.stderr), 2)
  end
  return r.stdout
end

local SSHD_CONFIG = [[
ListenAddress %s
Port 22
HostKey %s/hostkey
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel ERROR
MaxStartups 50
%s]]

-- Hosts 1 and 2 allow 50 sessions per connection; host 1 also answers on
-- port 2222. Host 3 keeps sshd's default of 10, and refuses hmac-sha1, as
-- hardened servers do (the MAC rasrun offers first on processors without
-- SHA instructions).
local EXTRA = { [1] = "MaxSessions 50\nPort 2222\n", [2] = "MaxSessions 50\n",
                [3] = "MACs hmac-sha2-256,hmac-sha2-512\n" }

local function add_host(env, i)
  local tag = ("rr%d-%d"):format(sys.pid(), i)
  local net = ("10.%d.%d"):format(env.octet, i)
  local h = { name = "h" .. i, ns = tag, veth = tag .. "a", addr = net .. ".2", dir = env.dir .. "/h" .. i }
  h.work, h.home = h.dir .. "/work", h.dir .. "/hecras"
  assert(fs.mkdirs(h.work))
  sh({ "cp", "-a", H.sim("linux"), h.home }, "copying the engine")
  sh({ "ip", "netns", "add", h.ns })
  env.namespaces[#env.namespaces + 1] = h.ns
  sh({ "ip", "link", "add", h.veth, "type", "veth", "peer", "name", tag .. "b" })
  sh({ "ip", "link", "set", tag .. "b", "netns", h.ns })
  sh({ "ip", "addr", "add", net .. ".1/24", "dev", h.veth })
  sh({ "ip", "link", "set", h.veth, "up" })
  sh({ "ip", "netns", "exec", h.ns, "ip", "addr", "add", h.addr .. "/24", "dev", tag .. "b" })
  sh({ "ip", "netns", "exec", h.ns, "ip", "link", "set", tag .. "b", "up" })
  sh({ "ip", "netns", "exec", h.ns, "ip", "link", "set", "lo", "up" })
  sh({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", h.dir .. "/hostkey" })
  fs.write(h.dir .. "/authorized_keys", H.read(env.key .. ".pub"))
  fs.write(h.dir .. "/sshd_config", SSHD_CONFIG:format(h.addr, h.dir, h.dir, h.dir, EXTRA[i] or ""))
  h.sshd_pid = assert(sys.spawn({ "ip", "netns", "exec", h.ns, "/usr/sbin/sshd", "-D", "-e",
                                  "-f", h.dir .. "/sshd_config" },
                                { stdout = h.dir .. "/sshd.log", stderr = h.dir .. "/sshd.log" }))
  env.hosts[i] = h
  -- ready when it answers with its host key (bounded)
  local line = H.wait_for(function()
    local r = sys.run({ "ssh-keyscan", "-T", "1", "-t", "ed25519", h.addr }, { timeout = 5 })
    return r and r.code == 0 and r.stdout:match("[^\n]+")
  end, 15, "sshd on " .. h.addr)
  h.host_key_line = line
  return h
end

-- Hosts of a test process that died without cleaning up (a crash) would
-- keep their namespaces, links and sshd: remove those of dead owners.
local function reap_stale()
  local links = sys.run({ "ip", "-o", "link", "show" }).stdout
  for owner, i in links:gmatch("rr(%d+)%-(%d+)a[@:]") do
    if not sys.alive(tonumber(owner)) then
      local ns = ("rr%s-%s"):format(owner, i)
      local r = sys.run({ "ip", "netns", "pids", ns })
      for pid in (r and r.stdout or ""):gmatch("%d+") do sys.kill(tonumber(pid), "KILL") end
      sys.run({ "ip", "netns", "del", ns })
      sys.run({ "ip", "link", "del", ns .. "a" })
    end
  end
  -- an sshd whose namespace lost its name: found by its test folder
  for _, name in ipairs(fs.list("/proc")) do
    local pid = tonumber(name)
    local cmd = pid and fs.read("/proc/" .. name .. "/cmdline")
    local dir = cmd and cmd:match("sshd%z.-%z%-f%z(/[^%z]*/rasrun%-test%-hosts%-[^/%z]+)/h%d+/sshd_config")
    if dir and not fs.isdir(dir) then sys.kill(pid, "KILL") end
  end
end

function M.start(count)
  reap_stale()
  -- not H.tmpdir: the hosts outlive each test's cleanup; stop() removes it.
  -- Each test process gets its own subnet: no clash with another's hosts.
  local env = { dir = assert(fs.tempdir("rasrun-test-hosts")), hosts = {}, namespaces = {},
                octet = 100 + sys.pid() % 150 }
  env.key = env.dir .. "/client_key"
  sh({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", env.key })
  assert(fs.mkdirs("/run/sshd"))
  local ok, err = pcall(function()
    for i = 1, count do add_host(env, i) end
  end)
  if not ok then
    M.stop(env)
    error(err, 0)
  end
  local lines = {}
  for _, h in ipairs(env.hosts) do lines[#lines + 1] = h.host_key_line end
  env.known_hosts = env.dir .. "/known_hosts"
  fs.write(env.known_hosts, table.concat(lines, "\n") .. "\n")
  return env
end

-- An address on a test host's own link where nothing answers: connecting
-- to it times out, and no packet leaves the test's network.
function M.nobody(env) return (env.hosts[1].addr:gsub("%.2$", ".77")) end

function M.cut(h)
  sh({ "ip", "link", "set", h.veth, "down" })
  h.cut = true
end
function M.mend(h)
  sh({ "ip", "link", "set", h.veth, "up" })
  h.cut = nil
end

-- Links a test cut and did not mend (it failed half-way) come back up, so
-- that the next test does not fail for it.
function M.mend_all(env)
  for _, h in ipairs(env.hosts) do
    if h.cut then M.mend(h) end
  end
end

function M.stop(env)
  for _, h in ipairs(env.hosts) do
    if h.sshd_pid then
      sys.kill_tree(h.sshd_pid, "KILL")
      sys.wait(h.sshd_pid, 5)
    end
  end
  for _, ns in ipairs(env.namespaces) do
    -- engines that outlived their session (reparented to init) still live in
    -- the namespace and would keep it, and its veth, alive
    local r = sys.run({ "ip", "netns", "pids", ns }, { timeout = 10 })
    for pid in (r and r.stdout or ""):gmatch("%d+") do sys.kill(tonumber(pid), "KILL") end
    sys.run({ "ip", "netns", "del", ns }, { timeout = 10 })
  end
  for _, h in ipairs(env.hosts) do sys.run({ "ip", "link", "del", h.veth }, { timeout = 10 }) end
  for _, u in ipairs(env.users or {}) do sys.run({ "userdel", "-f", u }, { timeout = 10 }) end
  fs.rmtree(env.dir)
end

-- A local user with a password, for password authentication (removed by stop).
function M.add_user(env, name, password)
  sys.run({ "userdel", "-f", name }, { timeout = 10 })
  sh({ "useradd", "-M", "-d", env.dir .. "/home-" .. name, "-s", "/bin/sh", name })
  env.users = env.users or {}
  env.users[#env.users + 1] = name
  assert(fs.mkdirs(env.dir .. "/home-" .. name))
  sh({ "chown", name, env.dir .. "/home-" .. name })
  local r = sys.run({ "chpasswd" }, { input = name .. ":" .. password .. "\n" })
  assert(r.code == 0, r.stderr)
end

-- Processes running an engine from this host's install.
function M.engines(h) return H.processes_under(h.home) end

function M.worker(env, i, extra)
  local h = env.hosts[i]
  local cfg = { type = "ssh", name = h.name, host = h.addr, user = "root", identity = env.key,
                known_hosts = env.known_hosts, workdir = h.work, slots = 2, tier = 0,
                engine = { kind = "linux", home = h.home }, connect_timeout = 5, keepalive = 1,
                io_timeout = 10, kill_grace = 0.5 }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return require("rasrun.pool").worker(cfg)
end

return M
