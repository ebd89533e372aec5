import time, torch, sys
from zeroskel.models.shiftgcn import ShiftGCN
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
for name, kw in [("default", {}), ("6unit", dict(channels=[64,64,128,128,256,256], strides=[1,1,2,1,2,1])),
                 ("compact4", dict(channels=[32,64,128,256], strides=[1,2,2,1])),
                 ("compact6", dict(channels=[32,32,64,64,128,256], strides=[1,1,2,1,2,1]))]:
    m = ShiftGCN("kinect20" if False else "utd20", in_channels=3, num_persons=1, **kw) if False else None
    try:
        m = ShiftGCN("kinect_v1", in_channels=3, num_persons=1, **kw)
    except Exception as e:
        print(e); break
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    x = torch.randn(32, 3, 32, 20, 1)
    npar = sum(p.numel() for p in m.parameters())
    ts = []
    for i in range(6):
        t0 = time.time(); out = m(x); loss = out.pow(2).mean(); opt.zero_grad(); loss.backward(); opt.step(); ts.append(time.time()-t0)
    print(name, npar, "ms/step", round(1000*sorted(ts[1:])[2]), flush=True)
