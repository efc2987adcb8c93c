// pm2 config for jimeng-api (gunicorn is not a Node app: interpreter "none").
//
// pm2 stops processes with SIGINT, which gunicorn treats as "quit now" and
// which would cut off in-flight generations. Start the pm2 daemon with
// PM2_KILL_SIGNAL=SIGTERM (gunicorn's graceful stop); it is read by the
// daemon, not by this file:
//   pm2 kill    # only if a daemon without it is already running
//   PM2_KILL_SIGNAL=SIGTERM pm2 start deploy/pm2/ecosystem.config.js
//   pm2 save && pm2 startup   # then add Environment=PM2_KILL_SIGNAL=SIGTERM
//                             # to the pm2-<user>.service it generates
// Reload workers gracefully: pm2 sendSignal SIGHUP jimeng-api
"use strict";

const fs = require("fs");

const APP_DIR = "/opt/jimeng-api";
const ENV_FILE = "/etc/jimeng-api.env"; // shared with the systemd unit

// KEY=value lines of ENV_FILE ({} if it is missing); comments and blanks skipped
function readEnvFile(path) {
  let text;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch {
    return {};
  }
  const env = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const eq = line.indexOf("=");
    if (!line || line.startsWith("#") || eq < 1) continue;
    env[line.slice(0, eq).trim()] = line
      .slice(eq + 1)
      .trim()
      .replace(/^(["'])(.*)\1$/, "$2");
  }
  return env;
}

if (process.env.PM2_KILL_SIGNAL !== "SIGTERM") {
  console.warn(
    "jimeng-api: PM2_KILL_SIGNAL is not SIGTERM; pm2 stop would drop in-flight " +
      "generations (see deploy/pm2/ecosystem.config.js)",
  );
}

module.exports = {
  apps: [
    {
      name: "jimeng-api",
      cwd: APP_DIR,
      script: `${APP_DIR}/.venv/bin/gunicorn`,
      args: ["-c", "gunicorn.conf.py"],
      interpreter: "none",
      exec_mode: "fork",
      instances: 1, // gunicorn forks its own workers (GUNICORN_WORKERS)
      autorestart: true,
      max_restarts: 10,
      min_uptime: "10s",
      // gunicorn lets in-flight requests finish for GUNICORN_GRACEFUL_TIMEOUT
      // (630 s, above GENERATION_TIMEOUT 600 s); SIGKILL only after 660 s.
      kill_timeout: 660000,
      // signal the gunicorn master only; it stops its workers itself
      treekill: false,
      env: {
        PYTHONUNBUFFERED: "1",
        PYTHONDONTWRITEBYTECODE: "1",
        HOST: "127.0.0.1",
        PORT: "8000",
        ...readEnvFile(ENV_FILE),
      },
      // logs: ~/.pm2/logs/jimeng-api-out.log (access log, stdout) and
      // jimeng-api-error.log (application/error log, stderr); pm2 logs jimeng-api;
      // rotate them with: pm2 install pm2-logrotate
      time: true, // gunicorn's access lines carry no timestamp
    },
  ],
};
