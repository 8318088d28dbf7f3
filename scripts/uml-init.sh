#!/usr/bin/busybox sh
# init of a User-Mode Linux guest that runs one test script with kernel SCTP (design.md §7).
# The kernel command line passes UML_OUT (a writable host folder), UML_SCRIPT, UML_CWD and UML_PYTHON.
B=/usr/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t tmpfs run /run  # not /tmp: the checkout itself may live under the host's /tmp
M=/usr/lib/uml/modules/$($B uname -r)/kernel
for m in lib/crc-ccitt net/ipv6/ipv6 net/ipv4/udp_tunnel net/ipv6/ip6_udp_tunnel net/sctp/sctp; do
  $B insmod "$M/$m.ko" 2>/dev/null
done
$B ip link set lo up
echo none > /proc/sys/net/sctp/cookie_hmac_alg
$B mount -t hostfs none /mnt -o "$UML_OUT"
cd "$UML_CWD"
HOME=/run TMPDIR=/run PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$UML_CWD" "$UML_PYTHON" "$UML_SCRIPT" > /mnt/output 2>&1
echo $? > /mnt/status
$B sync
$B poweroff -f
