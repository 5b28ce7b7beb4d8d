/* vCPU threads: the KVM_RUN loop, exit dispatch, parking for pause and the
 * auto-converge throttle. A vCPU belongs to its struct vm (vm.h). */
#ifndef TERN_VMM_VCPU_H
#define TERN_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

struct vm;

struct vcpu {
    struct vm *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool started;
    uint64_t ran_since_ns; /* end of the last throttle sleep */
};

int vcpu_init(struct vcpu *vcpu, struct vm *vm, unsigned index, struct err *e);
int vcpu_setup_boot(struct vcpu *vcpu, uint64_t entry, struct err *e);
int vcpu_start(struct vcpu *vcpu);
void vcpu_kick(struct vcpu *vcpu);
void vcpu_release(struct vcpu *vcpu);
void vcpu_signals_init(void);
/* In the vCPU thread after a kick: when throttled to pct, sleeps
 * pct / (100 - pct) times what it ran since its last sleep, so a kick that
 * comes late (a busy host) cannot hand the guest more than its share. */
void vcpu_throttle_point(struct vcpu *vcpu);

#endif
