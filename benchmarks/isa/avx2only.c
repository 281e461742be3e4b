/* LD_PRELOAD shim: make this process see an AVX2-only x86-64 CPU (no AVX-512, VNNI, BF16, AMX).
 *
 * Why: INT8 kernels without VNNI (vpmaddubsw + vpmaddwd + vpaddd, with u8*s8 pair sums saturating
 * at int16) differ from VNNI's vpdpbusd in speed and in result. oneDNN (OpenVINO), MLAS
 * (onnxruntime) and numpy pick their kernels from CPUID, so a box with AVX-512 VNNI can run the
 * AVX2 code paths when CPUID says AVX2 only. Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID,
 * /proc/cpuinfo flag `cpuid_fault`) turns every later CPUID into a SIGSEGV; the handler answers
 * from a table read before faulting was switched on, with the AVX-512/VNNI/BF16/AMX bits cleared.
 * The setting is inherited by threads and forks and dropped on execve. Kernel results match an
 * AVX2-only CPU bit for bit (same instructions); timings are this core's, not an older core's.
 *
 * Build: gcc -O2 -shared -fPIC -o avx2only.so avx2only.c
 * Use:   LD_PRELOAD=$PWD/avx2only.so python ...   (stderr says "avx2only: on" or why not)
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_GET_CPUID 0x1011
#define ARCH_SET_CPUID 0x1012
#define MAX_SUB 64

struct ent { unsigned leaf, sub, r[4]; };
static struct ent tab[8192];
static int n_tab;
static struct sigaction prev;

static void mask(struct ent *e) {
    if (e->leaf == 7 && e->sub == 0) {
        /* ebx: avx512 f dq ifma pf er cd bw vl */
        e->r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        /* ecx: avx512 vbmi, vbmi2, vnni, bitalg, vpopcntdq */
        e->r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* edx: 4vnniw, 4fmaps, vp2intersect, amx-bf16, avx512-fp16, amx-tile, amx-int8 */
        e->r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    }
    if (e->leaf == 7 && e->sub == 1) {
        /* eax: avx-vnni, avx512-bf16, amx-fp16, avx-ifma; edx: avx-vnni-int8, avx-ne-convert, avx-vnni-int16, avx10 */
        e->r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
        e->r[3] &= ~((1u << 4) | (1u << 5) | (1u << 10) | (1u << 19));
    }
}

static void record(unsigned base) {
    unsigned a, b, c, d, top;
    __cpuid_count(base, 0, top, b, c, d);
    for (unsigned leaf = base; leaf <= top && leaf < base + 0x40; leaf++)
        for (unsigned sub = 0; sub < MAX_SUB && n_tab < (int)(sizeof tab / sizeof tab[0]); sub++) {
            __cpuid_count(leaf, sub, a, b, c, d);
            struct ent e = {leaf, sub, {a, b, c, d}};
            mask(&e);
            tab[n_tab++] = e;
        }
}

static void on_segv(int sig, siginfo_t *si, void *vctx) {
    ucontext_t *uc = vctx;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (ip && ip[0] == 0x0f && ip[1] == 0xa2) {
        unsigned leaf = (unsigned)g[REG_RAX], sub = (unsigned)g[REG_RCX];
        unsigned r[4] = {0, 0, 0, 0};
        for (int i = 0; i < n_tab; i++)
            if (tab[i].leaf == leaf && tab[i].sub == (sub < MAX_SUB ? sub : 0)) {
                memcpy(r, tab[i].r, sizeof r);
                break;
            }
        g[REG_RAX] = r[0]; g[REG_RBX] = r[1]; g[REG_RCX] = r[2]; g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        return;
    }
    if (prev.sa_flags & SA_SIGINFO && prev.sa_sigaction) { prev.sa_sigaction(sig, si, vctx); return; }
    if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) { prev.sa_handler(sig); return; }
    signal(SIGSEGV, SIG_DFL); /* a real fault: re-executing the instruction crashes as usual */
}

__attribute__((constructor)) static void avx2only_init(void) {
    record(0);
    record(0x80000000u);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &prev);
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        sigaction(SIGSEGV, &prev, NULL);
        fprintf(stderr, "avx2only: CPUID faulting not available (cpuid_fault flag?) - NOT masked\n");
        return;
    }
    fprintf(stderr, "avx2only: on (%d CPUID entries, AVX-512/VNNI/BF16/AMX hidden)\n", n_tab);
}
