/**
 * `mode=tap,tapif=NAME`: a Linux tap device through /dev/net/tun, IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR (TUNSETIFF attaches to an existing persistent tap of that name, or creates one that
 * lives as long as the VMM). Frames carry a 12-byte virtio_net_hdr_v1 (TUNSETVNETHDRSZ), so the
 * guest's checksum offload passes through; TUNSETOFFLOAD follows what the driver accepted on receive.
 * These are the tun driver's numbers, not KVM's: the shim compiles them from linux/if_tun.h and
 * net/if.h (Shim.tun). Frames move on the event loop: readiness from uv_poll, non-blocking
 * read/write; a write the tap does not take is dropped and counted.
 */
import { constants as osConstants } from 'node:os';
import { isSysError, native, type FdPoll } from '../../../kvm/native.js';
import { NET_HDR_LEN, MAX_FRAME, type NetBackend } from '../net.js';
import { NetError, tapNameProblem } from './spec.js';

const TUN_PATH = '/dev/net/tun';
/** Frames read per readiness callback before the event loop gets a turn. */
const READ_BATCH = 64;
const { EAGAIN } = osConstants.errno;

function tapFailure(name: string, err: unknown, what: string): NetError {
  const code = isSysError(err) ? err.code : String(err);
  if (code === 'EPERM' || code === 'EACCES') return new NetError(`tap ${name}: ${what} needs CAP_NET_ADMIN (run as root, or create the tap for your user first: ip tuntap add ${name} mode tap user $USER)`);
  if (code === 'EBUSY') return new NetError(`tap ${name} is busy: another process has it open`);
  if (code === 'ENOENT' || code === 'ENODEV') return new NetError(`tap ${name}: ${TUN_PATH} is missing (load the tun module: modprobe tun)`);
  if (code === 'EINVAL') return new NetError(`tap ${name}: an interface of that name exists and is not a single-queue tap`);
  return new NetError(`tap ${name}: ${what} failed (${code})`);
}

export class TapBackend implements NetBackend {
  readonly vnetHeader = true;
  readonly name: string;
  private poll: FdPoll | undefined;
  private readonly buf = new Uint8Array(NET_HDR_LEN + MAX_FRAME);
  private readonly counts = { framesIn: 0, framesOut: 0, droppedOut: 0, writeErrors: 0 };
  private reportedWrite = false;
  private closed = false;

  private constructor(
    readonly ifname: string,
    readonly fd: number,
    private readonly log: (line: string) => void,
  ) {
    this.name = `tap ${ifname}`;
  }

  static open(ifname: string, log: (line: string) => void): TapBackend {
    const problem = tapNameProblem(ifname);
    if (problem) throw new NetError(problem);
    const shim = native();
    let fd: number;
    try {
      fd = shim.open(TUN_PATH);
    } catch (err) {
      throw tapFailure(ifname, err, `opening ${TUN_PATH}`);
    }
    const tun = shim.tun;
    try {
      const ifr = new Uint8Array(tun.ifreqSize);
      ifr.set(new TextEncoder().encode(ifname), 0);
      new DataView(ifr.buffer).setUint16(tun.ifreqFlagsOffset, tun.IFF_TAP | tun.IFF_NO_PI | tun.IFF_VNET_HDR, true);
      try {
        shim.ioctl(fd, tun.TUNSETIFF, ifr);
      } catch (err) {
        throw tapFailure(ifname, err, 'attaching');
      }
      const hdr = new Int32Array([NET_HDR_LEN]);
      shim.ioctl(fd, tun.TUNSETVNETHDRSZ, hdr);
      shim.ioctlValue(fd, tun.TUNSETOFFLOAD, 0);
      shim.setNonBlocking(fd);
      return new TapBackend(ifname, fd, log);
    } catch (err) {
      shim.close(fd);
      throw err instanceof NetError ? err : tapFailure(ifname, err, 'setting up');
    }
  }

  start(receive: (frame: Uint8Array) => void): void {
    const shim = native();
    this.poll = new shim.FdPoll(this.fd, () => {
      for (let i = 0; i < READ_BATCH && !this.closed; i++) {
        let n: number;
        try {
          n = shim.read(this.fd, this.buf);
        } catch {
          return; // EIO and the like while the interface goes away: nothing to read
        }
        if (n <= 0) return;
        this.counts.framesIn++;
        receive(this.buf.slice(0, n));
      }
    });
  }

  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    let n: number;
    try {
      n = native().write(this.fd, frame);
    } catch (err) {
      // EIO while the interface is down, EINVAL for a header the kernel refuses.
      this.counts.writeErrors++;
      if (!this.reportedWrite) {
        this.reportedWrite = true;
        this.log(`${this.name}: a frame was not taken (${isSysError(err) ? err.code : String(err)}); further ones counted, not logged`);
      }
      return false;
    }
    if (n === -EAGAIN || n < 0) {
      this.counts.droppedOut++;
      return false;
    }
    this.counts.framesOut++;
    return true;
  }

  setOffload(guestCsum: boolean): void {
    const { tun } = native();
    if (!this.closed) native().ioctlValue(this.fd, tun.TUNSETOFFLOAD, guestCsum ? tun.TUN_F_CSUM : 0);
  }

  counters(): Record<string, number> {
    return { ...this.counts };
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.poll?.close();
      native().close(this.fd);
    }
    return Promise.resolve();
  }
}
