// pm2 config for jimeng-api (gunicorn is not a Node app: interpreter "none").
//   pm2 start deploy/pm2/ecosystem.config.js
//   pm2 stop jimeng-api              # waits for running generations (see below)
//   pm2 sendSignal SIGHUP jimeng-api # graceful worker reload
//
// Stopping: pm2 sends SIGINT, which gunicorn treats as "quit now" and which
// would cut off in-flight generations. So pm2 does not run gunicorn directly
// but deploy/envexec.py --graceful-int, which turns SIGINT into SIGTERM
// (gunicorn's graceful stop) and passes every other signal on; pm2 waits
// kill_timeout before SIGKILL. No PM2_KILL_SIGNAL needed. envexec.py also reads
// /etc/jimeng-api.env (the systemd unit's file) at every start, safely (values
// with parentheses or quotes are fine), so `pm2 restart jimeng-api` picks up
// edits.
//
// JIMENG_API_DIR and JIMENG_API_ENV_FILE, in the environment of `pm2 start`,
// move the install and the env file (the tests use them).
"use strict";

const APP_DIR = process.env.JIMENG_API_DIR || "/opt/jimeng-api";
const ENV_FILE = process.env.JIMENG_API_ENV_FILE || "/etc/jimeng-api.env";

module.exports = {
  apps: [
    {
      name: "jimeng-api",
      cwd: APP_DIR,
      script: `${APP_DIR}/.venv/bin/python`,
      args: [
        `${APP_DIR}/deploy/envexec.py`,
        "--optional",
        "--graceful-int",
        ENV_FILE,
        "--",
        `${APP_DIR}/.venv/bin/gunicorn`,
        "-c",
        "gunicorn.conf.py",
      ],
      interpreter: "none",
      exec_mode: "fork",
      instances: 1, // gunicorn forks its own workers (GUNICORN_WORKERS)
      merge_logs: true, // log file names without the "-<id>" suffix
      autorestart: true,
      max_restarts: 10,
      min_uptime: "10s",
      // gunicorn lets in-flight requests finish for GUNICORN_GRACEFUL_TIMEOUT
      // (630 s, above GENERATION_TIMEOUT 600 s); SIGKILL only after 660 s.
      kill_timeout: 660000,
      // signal envexec.py only; it signals gunicorn, which stops its workers
      treekill: false,
      // defaults; ENV_FILE overrides them. DATA_DIR (the job store) must be
      // writable by the user that runs pm2.
      env: {
        PYTHONUNBUFFERED: "1",
        PYTHONDONTWRITEBYTECODE: "1",
        HOST: "127.0.0.1",
        PORT: "8000",
        DATA_DIR: "/var/lib/jimeng-api",
      },
      // logs: ~/.pm2/logs/jimeng-api-out.log (gunicorn's access log, stdout)
      // and ~/.pm2/logs/jimeng-api-error.log (application and error log,
      // stderr). gunicorn's lines carry their own timestamps, so no `time`
      // prefix. Rotate them with: pm2 install pm2-logrotate
    },
  ],
};
