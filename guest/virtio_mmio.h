/* The virtio-mmio (version 2) register map, shared by tern-guest's
 * drivers (virtio_blk.c, virtio_net.c). */
#ifndef TERN_GUEST_VIRTIO_MMIO_H
#define TERN_GUEST_VIRTIO_MMIO_H

#define VIRTIO_MAGIC 0x74726976
#define REG_MAGIC 0x000
#define REG_VERSION 0x004
#define REG_DEVICE_ID 0x008
#define REG_DEV_FEATURES 0x010
#define REG_DEV_FEAT_SEL 0x014
#define REG_DRV_FEATURES 0x020
#define REG_DRV_FEAT_SEL 0x024
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_READY 0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_INT_STATUS 0x060
#define REG_INT_ACK 0x064
#define REG_STATUS 0x070
#define REG_QUEUE_DESC 0x080
#define REG_QUEUE_DRIVER 0x090
#define REG_QUEUE_DEVICE 0x0a0
#define REG_CONFIG 0x100

#endif
