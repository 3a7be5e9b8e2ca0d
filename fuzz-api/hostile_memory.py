"""Memory under hostile clients: starts a roster binary on a fresh SQLite file
and, for 20 s, keeps 72 hostile clients busy (8 each: 10 MB bodies, 2.4 MB
chunked bodies, 40,000-deep nested JSON, 100 KB headers; 40 trickling a
request head and hanging up) while sampling the server's VmHWM.

    python3 fuzz-api/hostile_memory.py [path/to/roster]   (default target/release/roster)
"""
import socket, subprocess, sys, tempfile, threading, time, os, json
work=tempfile.mkdtemp()
binary=sys.argv[1] if len(sys.argv)>1 else "target/release/roster"
env=dict(os.environ,DATABASE_URL=f"sqlite://{work}/r.db?mode=rwc",ROSTER_BIND="127.0.0.1:18087",ROSTER_JWT_SECRET="x"*40,RUST_LOG="warn",ROSTER_BCRYPT_COST="4")
p=subprocess.Popen([binary],env=env,stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
time.sleep(1)
def hwm():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith(("VmHWM","VmRSS")): yield l.split()[1]
base=list(hwm())
stop=time.time()+20
counts={"big":0,"chunked":0,"nested":0,"header":0,"slow":0,"errors":0}
def send(raw, kind, trickle=False):
    while time.time()<stop:
        try:
            s=socket.create_connection(("127.0.0.1",18087),timeout=5)
            if trickle:
                s.sendall(raw[:20]); time.sleep(2); s.close(); counts[kind]+=1; continue
            s.sendall(raw)
            s.recv(4096); s.close(); counts[kind]+=1
        except Exception: counts["errors"]+=1
big=b"POST /auth/register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10485760\r\n\r\n"+b"x"*(1024*1024)
chunk=b"x"*60000
chunked=b"POST /auth/register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"+(b"%x\r\n"%len(chunk)+chunk+b"\r\n")*40+b"0\r\n\r\n"
nested_body=b'{"a":'*20000+b'1'+b'}'*20000
nested=b"POST /auth/register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"%len(nested_body)+nested_body
header=b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-pad: "+b"p"*(100*1024)+b"\r\n\r\n"
ts=[]
for raw,kind,n,tr in [(big,"big",8,False),(chunked,"chunked",8,False),(nested,"nested",8,False),(header,"header",8,False),(header,"slow",40,True)]:
    for _ in range(n):
        t=threading.Thread(target=send,args=(raw,kind,tr)); t.start(); ts.append(t)
peak=0
while time.time()<stop:
    v=list(hwm()); peak=max(peak,int(v[0])); time.sleep(0.5)
for t in ts: t.join()
print("baseline VmHWM/VmRSS kB", base, "final", list(hwm()), "peak sampled HWM kB", peak)
print(json.dumps(counts))
p.terminate(); p.wait()
