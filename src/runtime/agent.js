// memwatch's agent for Node.js: it answers memwatch's questions about the heap from inside
// the program, over a channel only memwatch holds (docs/runtime.md, "Security").
//
// - `memwatch run` passes one end of a socketpair to the command (MEMWATCH_AGENT_FD) and loads
//   this file with `--require`, from a folder only memwatch's user can read; the loader at the
//   end takes memwatch's variables and the --require back out of the environment, so the
//   program's own children are not affected.
// - `memwatch --pid` installs it through the inspector, which it closes right after: the agent
//   connects to a Unix socket memwatch listens on, which accepts only this process.
//
// Protocol: one JSON object a line each way. memwatch asks {"id", "op": "gc" | "usage" |
// "snapshot", "expires": unix ms}; the agent answers with the same id. It opens no port, keeps
// nothing alive (the channel is unref'd), never throws into the program, and ends when the
// channel closes: memwatch gone, killed with SIGKILL included.
function memwatchAgent(require, channel) {
  'use strict';
  const net = require('net');
  const v8 = require('v8');
  const MAX_LINE = 64 * 1024;
  let session = null;
  let gcWith = 'none';
  let why = '';
  try {
    const inspector = require('inspector');
    session = new inspector.Session();
    session.connect();
    gcWith = 'inspector';
  } catch (e) {
    session = null;
    why = String((e && e.message) || e);
    try {
      // A Node without the inspector: gc() made available for this agent alone.
      const vm = require('vm');
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc');
      v8.setFlagsFromString('--no-expose-gc');
      if (typeof gc === 'function') {
        gcWith = 'gc()';
        session = { gc };
      }
    } catch (e2) {
      why += '; ' + String((e2 && e2.message) || e2);
    }
  }

  let socket;
  try {
    socket = channel.fd !== undefined
      ? new net.Socket({ fd: channel.fd, readable: true, writable: true })
      : net.connect({ path: channel.path });
  } catch (e) {
    end();
    return;
  }
  socket.unref();
  socket.setEncoding('utf8');
  const send = (obj) => {
    try {
      if (!socket.destroyed) socket.write(JSON.stringify(obj) + '\n');
    } catch (e) {
      end();
    }
  };
  const hello = () => send({ hello: 1, pid: process.pid, node: process.version, gc: gcWith, why });
  if (channel.fd !== undefined) hello();
  else socket.on('connect', hello);

  let buffered = '';
  socket.on('data', (text) => {
    buffered += text;
    if (buffered.length > MAX_LINE && buffered.indexOf('\n') < 0) {
      end();
      return;
    }
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let req;
      try {
        req = JSON.parse(line);
      } catch (e) {
        continue;
      }
      try {
        answer(req);
      } catch (e) {
        send({ id: req.id, error: String((e && e.message) || e) });
      }
    }
  });
  socket.on('end', end);
  socket.on('close', end);
  socket.on('error', end);

  function end() {
    if (session && session.disconnect) {
      try {
        session.disconnect();
      } catch (e) {}
    }
    session = null;
    if (socket) {
      socket.removeAllListeners('data');
      socket.destroy();
    }
  }

  function heap() {
    const h = v8.getHeapStatistics();
    const m = process.memoryUsage();
    return {
      used: h.used_heap_size,
      total: h.total_heap_size,
      external: m.external,
      array_buffers: m.arrayBuffers,
    };
  }

  function answer(req) {
    const id = req.id;
    // Asked long ago and answered only now (the program was busy or stopped): memwatch has
    // recorded it as skipped, so the GC is not done at all.
    if (typeof req.expires === 'number' && Date.now() > req.expires) {
      send({ id, late: true });
      return;
    }
    if (req.op === 'usage') {
      const h = v8.getHeapStatistics();
      send({ id, used: h.used_heap_size, total: h.total_heap_size });
    } else if (req.op === 'gc') {
      if (!session) {
        send({ id, error: 'no way to force a GC in this Node: ' + why });
        return;
      }
      const t = process.hrtime.bigint();
      const done = (err) => {
        const pause_ms = Number(process.hrtime.bigint() - t) / 1e6;
        if (err) send({ id, error: String(err.message || err) });
        else send(Object.assign({ id, pause_ms }, heap()));
      };
      if (session.gc) {
        session.gc();
        done(null);
      } else {
        session.post('HeapProfiler.collectGarbage', done);
      }
    } else if (req.op === 'snapshot') {
      snapshot(id);
    } else {
      send({ id, error: 'unknown op ' + JSON.stringify(req.op) });
    }
  }

  // The snapshot streams to memwatch as it is written; memwatch writes the file.
  function snapshot(id) {
    if (session && session.post) {
      const chunk = (m) => send({ id, chunk: m.params.chunk });
      session.on('HeapProfiler.addHeapSnapshotChunk', chunk);
      session.post('HeapProfiler.takeHeapSnapshot', { reportProgress: false }, (err) => {
        if (session) session.removeListener('HeapProfiler.addHeapSnapshotChunk', chunk);
        send(err ? { id, error: String(err.message || err) } : { id, done: true });
      });
      return;
    }
    const stream = v8.getHeapSnapshot();
    stream.setEncoding('utf8');
    stream.on('data', (c) => send({ id, chunk: c }));
    stream.on('end', () => send({ id, done: true }));
    stream.on('error', (err) => send({ id, error: String(err.message || err) }));
  }
}
