#include <stdio.h>
int main(void)
{
    puts("syncgate " SYNCGATE_VERSION);
    return 0;
}
